"""Read-only views of what imagebak made: recovery points, freshness, history (state + journals, no cloud).

``observed`` reads the state file with every journal applied in memory, so a run in progress shows
its latest records. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from imagebak.config.schema import Policy, PolicyFile
from imagebak.engine.journal import replay_all
from imagebak.state import EXECUTIONS, HISTORY, POINTS, State, StateStore, policy_key

FRESHNESS_GRACE = timedelta(hours=6)  # a run may take hours: the newest point may be this much older than one interval


class Freshness(IntEnum):
    """Nagios plugin states, which are also ``imagebak check``'s exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class PointAge:
    policy: str
    instance: str
    region: str
    newest: datetime | None  # when the newest recovery point there was made; None: there is none
    run: str | None
    limit: timedelta

    def age(self, now: datetime) -> timedelta | None:
        return None if self.newest is None else now - self.newest

    def verdict(self, now: datetime) -> Freshness:
        age = self.age(now)
        if age is None or age > 2 * self.limit:
            return Freshness.CRITICAL
        return Freshness.WARNING if age > self.limit else Freshness.OK

    def to_json(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "policy": self.policy,
            "instance": self.instance,
            "region": self.region,
            "newest": self.newest.isoformat() if self.newest else None,
            "run": self.run,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
            "limit_seconds": int(self.limit.total_seconds()),
            "state": self.verdict(now).name,
        }


def observed(store: StateStore) -> State:
    """The state as it is now, in-flight journals included."""
    state = store.read()
    replay_all(state)
    return state


def points(state: State, policy: Policy) -> list[dict[str, Any]]:
    return list(state.policies.get(policy_key(policy.account, policy.region, policy.name), {}).get(POINTS, []))


def freshness(state: State, config: PolicyFile, max_age: timedelta | None, names: Iterable[str] = ()) -> list[PointAge]:
    """The newest recovery point of every enabled policy's instances, in the source and each destination."""
    wanted = set(names)
    ages = []
    for policy in config.policies:
        if not policy.enabled or (wanted and policy.name not in wanted):
            continue
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for point in points(state, policy):
            key = (point["instance"], point["region"])
            if key not in newest or point["created_at"] > newest[key]["created_at"]:
                newest[key] = point
        limit = max_age or policy.interval + FRESHNESS_GRACE
        for instance in policy.instances:
            for region in [policy.region, *(target.region for target in policy.copy_to)]:
                found = newest.get((instance, region))
                made = datetime.fromisoformat(found["created_at"]) if found else None
                ages.append(PointAge(policy.name, instance, region, made, found["run"] if found else None, limit))
    return ages


def history(state: State, names: Iterable[str] = (), since: datetime | None = None) -> list[dict[str, Any]]:
    """Finished executions, oldest first, one record each (from the state's recent history)."""
    wanted = set(names)
    rows = []
    for key, entry in state.policies.items():
        name = key.rsplit("/", 1)[-1]
        if wanted and name not in wanted:
            continue
        for run in entry.get(HISTORY, []):
            if since is not None and datetime.fromisoformat(run["started_at"]) < since:
                continue
            works = run.get("instances", {}).values()
            rows.append(
                {
                    "policy": name,
                    "policy_key": key,
                    "run_id": run["run_id"],
                    "manual": run.get("manual", False),
                    "started_at": run["started_at"],
                    "finished_at": run.get("finished_at"),
                    "done": sum(1 for w in works if w.get("status") == "done"),
                    "failed": sum(1 for w in works if w.get("status") == "failed"),
                    "skipped": sum(1 for w in works if w.get("status") == "skipped"),
                    "images": [w["image_id"] for w in works if w.get("image_id")],
                    "copies": sum(len(w.get("copies", {})) for w in works),
                    "errors": [
                        f"{iid}: {w.get('reason')}"
                        for iid, w in run.get("instances", {}).items()
                        if w.get("status") != "done" and w.get("reason")
                    ],
                }
            )
    return sorted(rows, key=lambda row: row["started_at"])


def in_flight(state: State, key: str) -> list[dict[str, Any]]:
    """The unfinished executions of one policy, as recorded."""
    return list(state.policies.get(key, {}).get(EXECUTIONS, {}).values())


@dataclass(frozen=True)
class RecoveryImage:
    """One image of a recovery point, as the state records it and the cloud shows it."""

    policy: str
    instance: str
    region: str
    image_id: str
    run: str | None  # None: the cloud shows it with imagebak's marks, the state does not know it
    created_at: str | None
    cloud_state: str | None  # None: the state knows it, the cloud does not show it
    size_gb: int | None
    latest: bool

    @property
    def agreement(self) -> str:
        if self.run is None:
            return "untracked: in the cloud, not in the state"
        if self.cloud_state is None:
            return "missing: in the state, not in the cloud"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "agreement": self.agreement}


def recovery_images(
    state: State, policy: Policy, region: str, instance: str, found: Iterable[tuple[str, str, int | None]]
) -> list[RecoveryImage]:
    """Join the state's points of one instance in one region with what the cloud shows (id, state, size)."""
    cloud = {image_id: (status, size) for image_id, status, size in found}
    recorded = [p for p in points(state, policy) if p["instance"] == instance and p["region"] == region]
    newest = max((p["created_at"] for p in recorded), default=None)
    images = []
    for point in recorded:
        for image_id in point["image_ids"]:
            status, size = cloud.pop(image_id, (None, None))
            latest = point["created_at"] == newest
            images.append(
                RecoveryImage(
                    policy.name, instance, region, image_id, point["run"], point["created_at"], status, size, latest
                )
            )
    for image_id, (status, size) in cloud.items():
        images.append(RecoveryImage(policy.name, instance, region, image_id, None, None, status, size, False))
    return images
