"""Retention across policies: after a run (for the policies that just made new points) and ``imagebak prune``.

Each policy is pruned under its lock; a policy another process holds is left for later. Points of
executions still in flight are protected. Deletions are journaled like every other change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imagebak.actions.prune import Point, Target, Verdict, prune
from imagebak.config.schema import Policy, PolicyFile, RetainSettings
from imagebak.engine.context import ProviderPool
from imagebak.engine.events import EventLog
from imagebak.engine.journal import Journal
from imagebak.engine.locks import PolicyLocks
from imagebak.providers.base import Provider
from imagebak.retention import Retain
from imagebak.state import EXECUTIONS, POINTS, State, policy_key

KEEP_NEWEST = Retain(last=1)  # ``prune --orphans``: a policy gone from the file keeps only its newest point


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


def targets(config: PolicyFile, names: Sequence[str] = ()) -> list[Target]:
    """Every policy (or the named ones) with a retention rule of its own or from the file's default."""
    found = []
    for policy in config.policies:
        if names and policy.name not in names:
            continue
        rule = policy.retain or config.retain
        if rule is None and not any(t.retain for t in policy.copy_to):
            continue  # no rule anywhere: everything is kept
        found.append(_target(policy, rule))
    return found


def orphan_targets(state: State, config: PolicyFile) -> list[Target]:
    """Policies the state has points of but the file no longer names: keep only each newest point."""
    known = {policy_key(p.account, p.region, p.name) for p in config.policies}
    orphans = []
    for key, entry in state.policies.items():
        parts = key.rsplit("/", 2)  # account/region/name (names and regions have no '/')
        if key not in known and entry.get(POINTS) and len(parts) == 3:
            account, region, name = parts
            orphans.append(Target(key, name, account, region, KEEP_NEWEST))
    return orphans


def _target(policy: Policy, rule: RetainSettings | None) -> Target:
    return Target(
        policy_key=policy_key(policy.account, policy.region, policy.name),
        name=policy.name,
        account=policy.account,
        region=policy.region,
        retain=_rule(rule),
        retain_in={t.region: _rule(t.retain or rule) for t in policy.copy_to},
        zone=policy.start.tzinfo,
    )


def _rule(settings: RetainSettings | None) -> Retain:
    if settings is None:
        return Retain()
    return Retain(
        last=settings.last,
        within=settings.span,
        daily=settings.daily,
        weekly=settings.weekly,
        monthly=settings.monthly,
        yearly=settings.yearly,
    )
