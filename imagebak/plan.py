"""What is due at a given moment, and why: config + state + clock -> a plan.

Pure: computing a plan never writes the state. ``imagebak run`` persists the reconciled
schedules it acts on; ``plan`` and ``policy list`` only show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from imagebak.config.schema import Policy, PolicyFile
from imagebak.schedule import ScheduleSpec, ScheduleState, describe, is_due, reconcile
from imagebak.state import State, policy_key


@dataclass(frozen=True)
class PlanEntry:
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


def build_plan(config: PolicyFile, state: State, now: datetime) -> list[PlanEntry]:
    """One entry per policy, in file order, with its schedule reconciled as of ``now``."""
    entries = []
    for policy in config.policies:
        key = policy_key(policy.account, policy.region, policy.name)
        schedule = reconcile(state.schedule(key), spec_of(policy), now)
        entries.append(PlanEntry(key, policy, schedule, is_due(schedule, now), describe(schedule, now)))
    return entries
