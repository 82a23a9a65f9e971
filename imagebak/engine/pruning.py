"""Retention across policies: after a run (for the policies that just made new points) and ``imagebak prune``.

Each policy is pruned under its lock; a policy another process holds is left for later. Points of
executions still in flight are protected. Deletions are journaled like every other change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imagebak.actions.prune import Point, Target, Verdict, prune
from imagebak.engine.context import ProviderPool
from imagebak.engine.events import EventLog
from imagebak.engine.journal import EXECUTIONS, POINTS, Journal
from imagebak.engine.locks import PolicyLocks
from imagebak.providers.base import Provider
from imagebak.state import State


class PruneContext:
    """Implements ``actions.prune.PrunePort`` for one invocation."""

    def __init__(self, providers: ProviderPool, journal: Journal | None, events: EventLog) -> None:
        self._providers = providers
        self._journal = journal
        self._events = events

    def provider(self, account: str) -> Provider:
        return self._providers.get(account)

    def log(self, **fields: Any) -> None:
        self._events.emit(**fields)

    def forget(self, policy_key: str, point: Point) -> None:
        if self._journal is not None:
            self._journal.pruned(policy_key, point)


def prune_policies(
    port: PruneContext,
    state: State,
    targets: Sequence[Target],
    now: datetime,
    *,
    locks: PolicyLocks | None,
    dry_run: bool,
) -> tuple[list[Verdict], list[str]]:
    """Prune each target's points; returns the verdicts and the policies left alone (locked)."""
    verdicts: list[Verdict] = []
    skipped: list[str] = []
    for target in targets:
        entry = state.policies.get(target.policy_key, {})
        points = entry.get(POINTS, [])
        if not points:
            continue
        if locks is not None and not locks.acquire(target.policy_key):
            skipped.append(target.name)
            continue
        busy = set(entry.get(EXECUTIONS, {}))
        verdicts += prune(port, target, points, busy, now, dry_run=dry_run)
    return verdicts, skipped
