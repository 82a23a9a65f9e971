"""What the state file remembers about executions in flight, so a killed run can resume.

An *execution* is one run of one policy. It snapshots the policy settings it started with,
so it can finish even if the policy is later disabled, edited or deleted (the products
promise that). Each instance has one image *artifact* and one artifact per copy; every
artifact is recorded as ``submitting`` before the cloud call and with its ref after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from imagebak.execution.states import ARTIFACT, WORK, ArtifactEvent, ArtifactState, Outcome, WorkEvent, WorkStatus


@dataclass
class Artifact:
    """One image being created or copied."""

    key: str  # idempotency key: same across retries of the same submission and across resumes
    name: str
    region: str
    source_image_id: str | None = None  # copies only
    state: ArtifactState = ArtifactState.PLANNED
    ref: str | None = None
    image_id: str | None = None
    progress: int | None = None
    size_gb: int | None = None
    attempt: int = 1
    submitted_at: str | None = None
    finished_at: str | None = None
    detail: str = ""
    extra_image_ids: list[str] = field(default_factory=list)
    tagged: bool = False
    encrypted: bool = False  # made from an encrypted disk: no vendor copies it across regions
    attempted_at: str | None = None  # when the latest submission was journaled (adoption grace)
    outcome: str | None = None  # why it was skipped or failed: an ``Outcome`` value

    def fire(self, event: ArtifactEvent) -> None:
        """Move to the state the transition table gives for ``event``."""
        self.state = ARTIFACT.fire(self.state, event)

    def skip(self, outcome: Outcome, detail: str) -> None:
        """It will not be made, for a reason that is no failure of imagebak or the cloud."""
        self.fire(ArtifactEvent.SKIPPED)
        self.outcome, self.detail = outcome.value, detail

    @property
    def open(self) -> bool:
        """Not yet accepted by the cloud: planned, or submitted without a recorded answer."""
        return self.state in (ArtifactState.PLANNED, ArtifactState.SUBMITTING)

    def to_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict``, a copy, at a fraction of its cost (the journal writes one per save)."""
        return {**self.__dict__, "extra_image_ids": list(self.extra_image_ids)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Artifact:
        return cls(**{**raw, "state": ArtifactState(raw.get("state", ArtifactState.PLANNED))})


@dataclass
class InstanceWork:
    instance_id: str
    status: WorkStatus = WorkStatus.NEW
    reason: str = ""
    devices: list[str] = field(default_factory=list)
    image: Artifact | None = None
    copies: dict[str, Artifact] = field(default_factory=dict)  # "<dest region>/<source image id>"
    error: dict[str, Any] | None = None
    leftovers: list[str] = field(default_factory=list)  # failed images the cloud would not delete: on record

    @property
    def terminal(self) -> bool:
        return self.status in WORK.terminal

    def fire(self, event: WorkEvent) -> None:
        """Move to the status the transition table gives for ``event``."""
        self.status = WORK.fire(self.status, event)

    def to_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict``, a copy, at a fraction of its cost (the journal writes one per save)."""
        return {
            **self.__dict__,
            "devices": list(self.devices),
            "image": self.image.to_dict() if self.image else None,
            "copies": {key: copy.to_dict() for key, copy in self.copies.items()},
            "error": dict(self.error) if self.error is not None else None,
            "leftovers": list(self.leftovers),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InstanceWork:
        raw = dict(raw)
        image = raw.pop("image", None)
        copies = raw.pop("copies", {})
        return cls(
            **{**raw, "status": WorkStatus(raw.get("status", WorkStatus.NEW))},
            image=Artifact.from_dict(image) if image else None,
            copies={k: Artifact.from_dict(v) for k, v in copies.items()},
        )


@dataclass(frozen=True)
class PolicySnapshot:
    """The policy settings an execution started with."""

    name: str
    account: str
    region: str
    disks: str | list[str]
    copy_to: list[tuple[str, str | None]]  # (region, vault)
    image_name: str
    description: str
    retry_failed: int
    vault: str | None = None  # Huawei whole-machine images: the source region's CBR vault

    @property
    def whole_image(self) -> bool:
        """Every cloud disk in one image: the same rule validation applies (``disks: all``)."""
        return self.disks == "all"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PolicySnapshot:
        raw = dict(raw)
        raw["copy_to"] = [tuple(item) for item in raw["copy_to"]]
        return cls(**raw)


@dataclass
class Execution:
    policy_key: str
    run_id: str  # UTC timestamp of the start, unique per policy
    manual: bool
    started_at: str
    policy: PolicySnapshot
    instances: dict[str, InstanceWork]
    finished_at: str | None = None

    @property
    def done(self) -> bool:
        return all(work.terminal for work in self.instances.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Execution:
        raw = dict(raw)
        return cls(
            **{
                **raw,
                "policy": PolicySnapshot.from_dict(raw["policy"]),
                "instances": {k: InstanceWork.from_dict(v) for k, v in raw["instances"].items()},
            }
        )


class WorkItem(NamedTuple):
    """One artifact with the instance work and execution it belongs to: what steps pass around."""

    execution: Execution
    work: InstanceWork
    artifact: Artifact

    @property
    def account(self) -> str:
        return self.execution.policy.account
