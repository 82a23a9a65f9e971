"""Pruning: delete the recovery points a policy's retention rules no longer keep, chain and all.

A candidate is a recovery point the state file records (one execution's images of one instance in
one region) whose images the cloud still shows with imagebak's ownership marks for that run and
instance: an image imagebak did not make, or cannot prove it made, is never deleted. The rules
(``imagebak.retention``) are applied per instance and region; a point of an execution still in
flight is never a candidate, and the newest point always stays. Each deletion is logged; the
adapters remove what the image leaves behind (snapshots, backups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from imagebak.ownership import TAG_INSTANCE, TAG_RUN
from imagebak.providers.base import ErrorKind, ImageState, Provider, ProviderError
from imagebak.retention import Candidate, Decision, Retain, decide

Point = dict[str, Any]  # {instance, region, run, created_at, image_ids}


class PrunePort(Protocol):
    def provider(self, account: str) -> Provider: ...

    def log(self, **fields: Any) -> None:
        """One execution-log line."""
        ...

    def forget(self, policy_key: str, point: Point) -> None:
        """Journal that a point's images are gone."""
        ...


@dataclass(frozen=True)
class Target:
    """One policy as pruning sees it."""

    policy_key: str
    name: str
    account: str
    region: str  # the source region
    retain: Retain  # in the source region
    retain_in: Mapping[str, Retain] = field(default_factory=dict)  # per destination region, else ``retain``
    zone: tzinfo | None = None  # the policy's own time zone, for daily/weekly/... periods

    def rule(self, region: str) -> Retain:
        return self.retain_in.get(region, self.retain) if region != self.region else self.retain


@dataclass(frozen=True)
class Verdict:
    policy: str
    point: Point
    keep: bool
    reasons: tuple[str, ...]
    deleted: bool = False
    problem: str | None = None  # why a point the rules let go was kept anyway

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            **{k: self.point[k] for k in ("instance", "region", "run", "created_at", "image_ids")},
            "keep": self.keep,
            "reasons": list(self.reasons),
            "deleted": self.deleted,
            "problem": self.problem,
        }


def prune(
    port: PrunePort, target: Target, points: Sequence[Point], busy_runs: set[str], now: datetime, *, dry_run: bool
) -> list[Verdict]:
    """Decide every point of one policy and (unless ``dry_run``) delete the ones no rule keeps."""
    groups: dict[tuple[str, str], list[Point]] = {}
    for point in points:
        groups.setdefault((point["instance"], point["region"]), []).append(point)
    verdicts = []
    for (_instance, region), group in sorted(groups.items()):
        by_run = {p["run"]: p for p in group}
        candidates = [
            Candidate(
                p["run"],
                datetime.fromisoformat(p["created_at"]),
                protected="an execution in flight" if p["run"] in busy_runs else None,
            )
            for p in group
        ]
        zone = target.zone or now.tzinfo
        assert zone is not None
        for decision in decide(candidates, target.rule(region), now, zone):
            point = by_run[decision.image_id]
            verdicts.append(_settle(port, target, point, decision, dry_run))
    return verdicts


def _settle(port: PrunePort, target: Target, point: Point, decision: Decision, dry_run: bool) -> Verdict:
    verdict = Verdict(target.name, point, decision.keep, decision.reasons)
    if decision.keep or dry_run:
        return verdict
    provider = port.provider(target.account)
    problem = _unproven(provider, point) or _delete(provider, point)
    if problem is not None:
        port.log(step="prune", outcome="kept", policy=target.name, instance=point["instance"],
                 region=point["region"], run=point["run"], message=problem)  # fmt: skip
        return Verdict(target.name, point, True, (), problem=problem)
    port.forget(target.policy_key, point)
    port.log(step="prune", outcome="deleted", policy=target.name, instance=point["instance"],
             region=point["region"], run=point["run"], image_ids=point["image_ids"])  # fmt: skip
    return Verdict(target.name, point, False, (), deleted=True)


def _unproven(provider: Provider, point: Point) -> str | None:
    """Why the cloud does not confirm these images as imagebak's for this run and instance (None: it does)."""
    try:
        found = provider.find_images(point["region"], {TAG_RUN: point["run"], TAG_INSTANCE: point["instance"]})
        owned = {status.image_id for status in found}
        unmarked = [i for i in point["image_ids"] if i not in owned]
        existing = provider.image_status(point["region"], unmarked) if unmarked else {}
    except ProviderError as error:
        return f"could not check ownership: {error.describe()}"
    present = [i for i in unmarked if existing[i].state is not ImageState.MISSING]
    if present:
        return f"ownership marks not found on {', '.join(present)}: left alone"
    return None  # every image proven ours, or already gone


def _delete(provider: Provider, point: Point) -> str | None:
    """Delete every image of the point; an image already gone counts as deleted."""
    for image_id in point["image_ids"]:
        try:
            provider.delete_image(point["region"], image_id)
        except ProviderError as error:
            if error.kind is not ErrorKind.NOT_FOUND:
                return f"delete {image_id}: {error.describe()}"
    return None
