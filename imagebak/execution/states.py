"""The state machine of an execution: every state, every event, and the one table of transitions.

An instance's *work* goes ``new -> creating -> copying -> done`` and may end ``failed`` or
``skipped`` from any live state. Each *artifact* (the image, and each copy) goes
``planned -> submitting -> pending -> available`` and may end ``failed`` or ``skipped``.
``submitting`` means the cloud call may or may not have reached the cloud: a resumed run adopts
what it finds before it submits again.

The engine never assigns a state: it reports an event, and ``WORK.fire``/``ARTIFACT.fire``
look the next state up here. Adding a state or an event is a change to this module only (plus
the code that raises the event). ``python -m imagebak.execution.states`` prints the diagram
that docs/dev/architecture.md shows; a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Generic, TypeVar


class WorkStatus(str, Enum):
    """Where one instance's work stands in one execution (stored in the state file by value)."""

    NEW = "new"
    CREATING = "creating"
    COPYING = "copying"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class WorkEvent(str, Enum):
    PREPARED = "prepared"  # eligible, disks chosen, quota reserved: the image artifact exists
    IMAGE_RETRY = "image-retry"  # the image failed and is re-created (retry_failed)
    IMAGE_READY = "image-ready"  # the image is available: copies (if any) are planned
    COPIES_SETTLED = "copies-settled"  # every copy is available, or skipped for a reason that is no failure
    SKIPPED = "skipped"  # a step ended the work without a failure (local system disk, quota)
    FAILED = "failed"  # a step, the image or a copy failed for good


class ArtifactState(str, Enum):
    """Where one image or copy stands (stored in the state file by value)."""

    PLANNED = "planned"
    SUBMITTING = "submitting"  # journaled before the call: it may or may not have reached the cloud
    PENDING = "pending"  # the cloud accepted it (a ref to poll)
    AVAILABLE = "available"
    FAILED = "failed"
    SKIPPED = "skipped"


class ArtifactEvent(str, Enum):
    SUBMIT = "submit"  # about to call the cloud
    ACCEPTED = "accepted"  # the cloud returned a ref
    ADOPTED = "adopted"  # an earlier submission's image was found by its key
    REFUSED = "refused"  # refused for now (e.g. copy slots full): plan it again
    REJECTED = "rejected"  # refused for good
    SKIPPED = "skipped"  # will not be made, for a stated reason (encrypted, size limit, quota)
    POLLED = "polled"  # still being made
    READY = "ready"  # available
    BROKEN = "broken"  # the cloud reports it failed, or it vanished


class Outcome(str, Enum):
    """What one step did to an instance's work, as the log and the summary name it."""

    OK = "ok"
    RETRY_LATER = "retry-later"  # a transient fault or a conflict: the next pass (or run) tries again
    QUOTA_SKIP = "quota-skip"  # no image/snapshot quota (or no image quota in a copy's destination)
    COPY_IMPOSSIBLE = "copy-impossible"  # the image is made, but cannot be copied (encrypted, too large)
    SKIPPED = "skipped"  # not imageable, with the reason
    FAILED = "failed"


class NoteKind(str, Enum):
    """Why a selected policy did not start in this invocation."""

    LOCKED = "locked"  # another process works on it
    ACCOUNT = "account"  # its account cannot be used now (credentials, SDK, removed from the file)
    TOO_SOON = "too_soon"  # a manual run within the 12-hour floor
    BUSY = "busy"  # its previous execution is still in flight and was resumed instead


S = TypeVar("S", bound=Enum)
E = TypeVar("E", bound=Enum)


class IllegalTransition(RuntimeError):
    """A bug: the engine reported an event that the table does not allow in the current state."""


@dataclass(frozen=True)
class Machine(Generic[S, E]):
    """A transition table with its initial state; terminal states are those with no way out."""

    name: str
    initial: S
    table: Mapping[tuple[S, E], S]

    def fire(self, state: S, event: E) -> S:
        try:
            return self.table[(state, event)]
        except KeyError:
            raise IllegalTransition(f"{self.name}: no transition from {state.value} on {event.value}") from None

    def allows(self, state: S, event: E) -> bool:
        return (state, event) in self.table

    @cached_property  # asked for every instance on every pass
    def terminal(self) -> frozenset[S]:
        sources = {state for state, _ in self.table}
        return frozenset(s for s in type(self.initial) if s not in sources)

    def mermaid(self) -> str:
        """The diagram for docs/dev/architecture.md."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial.value}"]
        for (source, event), target in self.table.items():
            lines.append(f"    {source.value} --> {target.value}: {event.value}")
        lines += [f"    {state.value} --> [*]" for state in type(self.initial) if state in self.terminal]
        return "\n".join(lines)


_LIVE_WORK = (WorkStatus.NEW, WorkStatus.CREATING, WorkStatus.COPYING)

WORK: Machine[WorkStatus, WorkEvent] = Machine(
    "instance work",
    WorkStatus.NEW,
    {
        (WorkStatus.NEW, WorkEvent.PREPARED): WorkStatus.CREATING,
        (WorkStatus.CREATING, WorkEvent.IMAGE_RETRY): WorkStatus.CREATING,
        (WorkStatus.CREATING, WorkEvent.IMAGE_READY): WorkStatus.COPYING,
        (WorkStatus.COPYING, WorkEvent.COPIES_SETTLED): WorkStatus.DONE,
        **{(state, WorkEvent.SKIPPED): WorkStatus.SKIPPED for state in _LIVE_WORK},
        **{(state, WorkEvent.FAILED): WorkStatus.FAILED for state in _LIVE_WORK},
    },
)

_OPEN_ARTIFACT = (ArtifactState.PLANNED, ArtifactState.SUBMITTING)

ARTIFACT: Machine[ArtifactState, ArtifactEvent] = Machine(
    "artifact",
    ArtifactState.PLANNED,
    {
        (ArtifactState.PLANNED, ArtifactEvent.SUBMIT): ArtifactState.SUBMITTING,
        (ArtifactState.SUBMITTING, ArtifactEvent.SUBMIT): ArtifactState.SUBMITTING,  # resumed: submit again
        (ArtifactState.SUBMITTING, ArtifactEvent.ACCEPTED): ArtifactState.PENDING,
        (ArtifactState.SUBMITTING, ArtifactEvent.ADOPTED): ArtifactState.PENDING,
        (ArtifactState.SUBMITTING, ArtifactEvent.REFUSED): ArtifactState.PLANNED,
        (ArtifactState.SUBMITTING, ArtifactEvent.REJECTED): ArtifactState.FAILED,
        **{(state, ArtifactEvent.SKIPPED): ArtifactState.SKIPPED for state in _OPEN_ARTIFACT},
        (ArtifactState.PENDING, ArtifactEvent.POLLED): ArtifactState.PENDING,
        (ArtifactState.PENDING, ArtifactEvent.READY): ArtifactState.AVAILABLE,
        (ArtifactState.PENDING, ArtifactEvent.BROKEN): ArtifactState.FAILED,
    },
)


if __name__ == "__main__":
    for machine in (WORK, ARTIFACT):
        print(f"{machine.name}:\n```mermaid\n{machine.mermaid()}\n```")
