"""Creates and copies through ``actions.adoption.submit_once``, the way the engine sends them.

Adapters submit once; retries and adoption live in one home above them. These helpers give the
adapter tests that home with a minimal step context, so "resubmitted after a crash" and "reply
lost, then retried" are tested on the real mechanism.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from imagebak.actions.adoption import submit_once
from imagebak.execution.records import Artifact, Execution, InstanceWork, PolicySnapshot, WorkItem
from imagebak.execution.states import ArtifactState
from imagebak.providers.base import CopySpec, ImageSpec, Provider


class _Port:
    """The part of StepContext that submission uses: the provider, a clock, and no-op records."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.events: list[dict[str, Any]] = []

    def provider(self, account: str) -> Provider:
        return self._provider

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def save(self, execution: Execution, work: InstanceWork, *, durable: bool = True) -> None:
        pass

    def event(self, execution: Execution, work: InstanceWork | None, **fields: Any) -> None:
        self.events.append(fields)


def _item(key: str, name: str, region: str, resumed: bool, source: str | None = None) -> WorkItem:
    snapshot = PolicySnapshot("p", "account", region, "all", [], "{policy}", "", 0)
    execution = Execution("account/region/p", "run", False, "2026-01-01T00:00:00+00:00", snapshot, {})
    state = ArtifactState.SUBMITTING if resumed else ArtifactState.PLANNED
    artifact = Artifact(key=key, name=name, region=region, source_image_id=source, state=state)
    return WorkItem(execution, InstanceWork("instance"), artifact)


def submit(provider: Provider, spec: ImageSpec, *, resumed: bool = False) -> str:
    """Create an image; ``resumed``: as a run that finds the submission journaled but unanswered."""
    item = _item(spec.idempotency_key, spec.name, spec.region, resumed)
    submit_once(_Port(provider), [item], "create", lambda _: {spec.idempotency_key: provider.create_image(spec)})  # type: ignore[arg-type]
    assert item.artifact.ref is not None
    return item.artifact.ref


def copy(provider: Provider, specs: Sequence[CopySpec], *, resumed: bool = False) -> dict[str, str]:
    """Copy images (one batch); returns {source image id: ref} for the copies made or adopted."""
    items = [_item(s.idempotency_key, s.name, s.dest_region, resumed, s.image_id) for s in specs]
    by_key = {s.idempotency_key: s for s in specs}

    def send(todo: Sequence[WorkItem]) -> dict[str, str]:
        return dict(provider.copy_images([by_key[i.artifact.key] for i in todo]))

    submit_once(_Port(provider), items, "copy", send)  # type: ignore[arg-type]
    return {i.artifact.source_image_id or "": i.artifact.ref for i in items if i.artifact.ref}
