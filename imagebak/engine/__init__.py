"""The run engine: ``run`` is the one entry point of ``imagebak run``; ``preview`` serves ``--dry-run``.

selection.py picks executions (from ``plan.build_plan``), runner.py drives them through the
state machine of ``execution.states`` using the steps in ``actions``, journal.py and events.py
record every change, report.py turns the result into an exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from imagebak.config import LoadedConfig
from imagebak.engine.context import ProviderPool, RunContext
from imagebak.engine.events import EventLog
from imagebak.engine.journal import Journal, recover
from imagebak.engine.locks import PolicyLocks
from imagebak.engine.options import RunOptions
from imagebak.engine.report import RunReport, stalled
from imagebak.engine.runner import Engine
from imagebak.engine.selection import Note, select, selected_names
from imagebak.execution.records import Execution
from imagebak.providers.base import Provider
from imagebak.state import StateStore, policy_key

__all__ = ["Note", "RunOptions", "RunReport", "preview", "run", "selected_names"]


def run(
    loaded: LoadedConfig,
    store: StateStore,
    options: RunOptions,
    providers: Callable[[str], Provider],
    now: Callable[[], datetime],
    *,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Select what to work on (under the policies' locks), drive it forward, and report."""
    locks = PolicyLocks(store.path.parent / "locks")
    journal = Journal(store)
    pool = ProviderPool(providers)
    try:
        with store.update() as state:
            folded = recover(state)
            executions, notes = select(state, loaded, now(), options, locks, pool.problem)
        for path in folded:
            path.unlink(missing_ok=True)  # now in the state file
        ctx = RunContext(pool, journal, EventLog(loaded.resolve(loaded.model.log)), now)
        deadline_hit = Engine(ctx, options, progress=progress).advance(executions)
    finally:
        journal.close()
        locks.release_all()
    intervals = {policy_key(p.account, p.region, p.name): p.interval for p in loaded.model.policies}
    return RunReport(executions, notes, deadline_hit, stalled(executions, intervals, now()))


def preview(
    loaded: LoadedConfig, store: StateStore, options: RunOptions, now: datetime
) -> tuple[list[Execution], list[Note]]:
    """What ``run`` would start or resume, computed on a copy of the state: nothing is written or locked."""
    state = store.read()
    recover(state)
    return select(state, loaded, now, options, locks=None)
