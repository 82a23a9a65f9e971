"""What is due at a given moment, and why: config + state + clock -> a plan.

Pure: computing a plan never writes the state. ``imagebak run`` persists the reconciled
schedules it acts on; ``plan`` and ``policy list`` only show them.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from imagebak.config.schema import Policy, PolicyFile
from imagebak.schedule import ScheduleSpec, ScheduleState, describe, is_due, reconcile
from imagebak.state import State, policy_key


class PlanEntry(NamedTuple):
    key: str
    policy: Policy
    schedule: ScheduleState
    due: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        p = self.policy
        return {
            "policy": p.name,
            "account": p.account,
            "region": p.region,
            "enabled": p.enabled,
            "every": p.every,
            "instances": len(p.instances),
            "copy_to": [t.region for t in p.copy_to],
            "due": self.due,
            "reason": self.reason,
            "next_run": self.schedule.due_at.isoformat() if p.enabled else None,
            "last_run": self.schedule.last_run.isoformat() if self.schedule.last_run else None,
        }


def spec_of(policy: Policy) -> ScheduleSpec:
    return ScheduleSpec(start=policy.start, every=policy.interval, enabled=policy.enabled)


def build_plan(config: PolicyFile, state: State, now: datetime, *, seen: datetime | None = None) -> list[PlanEntry]:
    """One entry per policy, in file order, with its schedule reconciled, and due or not at ``now``.

    ``seen`` is when imagebak looks at the file (the real now; ``plan --at`` asks about another
    moment): the 30-minute rule for a new or changed policy counts from it.
    """
    known = {policy_key(p.account, p.region, p.name) for p in config.policies}
    entries = []
    for policy in config.policies:
        key = policy_key(policy.account, policy.region, policy.name)
        previous = state.schedule(key)
        schedule = reconcile(previous, spec_of(policy), seen or now)
        if previous is None:
            schedule = schedule._replace(last_run=_renamed_from(state, policy, known))
        entries.append(PlanEntry(key, policy, schedule, is_due(schedule, now), describe(schedule, now)))
    return entries


def _renamed_from(state: State, policy: Policy, known: set[str]) -> datetime | None:
    """A policy new to the state may be an old one renamed: the same account, region and instances under a
    name the file no longer has. Its last run carries over, so the 12-hour floor survives a rename.
    (A different set of instances makes it another policy.)"""
    last_runs = []
    for key, entry in state.policies.items():
        parts = key.rsplit("/", 2)  # account/region/name; a key of another shape is no predecessor
        if key in known or len(parts) != 3 or (parts[0], parts[1]) != (policy.account, policy.region):
            continue
        runs = [*(entry.get("history") or [])[-1:], *(entry.get("executions") or {}).values()]
        instances = {iid for run in runs for iid in run.get("instances", {})}
        previous = state.schedule(key)
        if instances == set(policy.instances) and previous is not None and previous.last_run is not None:
            last_runs.append(previous.last_run)
    return max(last_runs, default=None)
