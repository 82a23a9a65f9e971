"""The run engine: ``run`` is the one entry point of ``imagebak run``; ``preview`` serves ``--dry-run``.

selection.py picks executions (from ``plan.build_plan``), runner.py drives them through the
state machine of ``execution.states`` using the steps in ``actions``, journal.py and events.py
record every change, report.py turns the result into an exit code.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from imagebak.actions.prune import Verdict
from imagebak.config import LoadedConfig
from imagebak.engine import pruning
from imagebak.engine.context import ProviderPool, RunContext
from imagebak.engine.events import EventLog
from imagebak.engine.journal import Journal, recover, replay_all
from imagebak.engine.locks import PolicyLocks
from imagebak.engine.options import RunOptions
from imagebak.engine.report import RunReport, stalled
from imagebak.engine.runner import Engine
from imagebak.engine.selection import Note, select, selected_names
from imagebak.execution.records import Execution
from imagebak.providers.base import Provider
from imagebak.state import StateStore, policy_key

__all__ = ["Note", "RunOptions", "RunReport", "Verdict", "preview", "prune", "run", "selected_names"]


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
    events = EventLog(loaded.resolve(loaded.model.log))  # an unusable log stops the run before anything starts
    locks = PolicyLocks(store.path.parent / "locks")
    journal = Journal(store)
    pool = ProviderPool(providers)
    try:
        with store.update() as state:
            folded = recover(state)
            executions, notes = select(state, loaded, now(), options, locks, pool.problem)
        for path in folded:
            path.unlink(missing_ok=True)  # now in the state file
        ctx = RunContext(pool, journal, events, now)
        with _collector_skips_what_exists():
            deadline_hit = Engine(ctx, options, progress=progress).advance(executions)
        finished = {e.policy_key for e in executions if e.done}  # their new points are available: prune now
        chosen = [t for t in pruning.targets(loaded.model) if t.policy_key in finished]
        journal.compact()  # the points those executions just recorded
        pruned, _ = pruning.prune_policies(
            pruning.PruneContext(pool, journal, events), store.read(), chosen, now(), locks=locks, dry_run=False
        )
    finally:
        journal.close()
        locks.release_all()
    intervals = {policy_key(p.account, p.region, p.name): p.interval for p in loaded.model.policies}
    return RunReport(
        executions, notes, deadline_hit, stalled(executions, intervals, now()), events.problem, pruned=pruned
    )


@contextlib.contextmanager
def _collector_skips_what_exists() -> Iterator[None]:
    """While the run allocates its many short-lived records, what existed before it (modules, the vendor
    SDKs, config, state) stays: ``gc.freeze`` keeps the cycle collector's full passes to what the run
    made. With the bench's in-process cloud, a full pass took ~45 ms; one in a submission wave stalls
    every lane. Unfrozen afterwards, so a process that runs again (tests) can still free it all."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def prune(
    loaded: LoadedConfig,
    store: StateStore,
    providers: Callable[[str], Provider],
    now: datetime,
    *,
    names: Sequence[str] = (),
    dry_run: bool = False,
    orphans: bool = False,
) -> tuple[list[Verdict], list[str]]:
    """``imagebak prune``: apply retention now; returns the verdicts and the policies left alone, and why."""
    events = EventLog(None if dry_run else loaded.resolve(loaded.model.log))
    locks = None if dry_run else PolicyLocks(store.path.parent / "locks")
    journal = None if dry_run else Journal(store)
    pool = ProviderPool(providers)
    try:
        state = store.read()
        replay_all(state)  # the newest points, in-flight journals included
        chosen = pruning.targets(loaded.model, names) + (pruning.orphan_targets(state, loaded.model) if orphans else [])
        problems = {account: pool.problem(account) for account in {t.account for t in chosen}}  # each built once
        usable = [t for t in chosen if problems[t.account] is None]
        left = [f"{t.name}: {problems[t.account]}" for t in chosen if problems[t.account] is not None]
        verdicts, locked = pruning.prune_policies(
            pruning.PruneContext(pool, journal, events), state, usable, now, locks=locks, dry_run=dry_run
        )
    finally:
        if journal is not None:
            journal.close()
        if locks is not None:
            locks.release_all()
    return verdicts, left + [f"{name}: another imagebak process holds it" for name in locked]


def preview(
    loaded: LoadedConfig, store: StateStore, options: RunOptions, now: datetime
) -> tuple[list[Execution], list[Note]]:
    """What ``run`` would start or resume, computed on a copy of the state: nothing is written or locked."""
    state = store.read()
    recover(state)
    return select(state, loaded, now, options, locks=None)
