"""Step 5 (and the copy half of step 6): poll pending images and copies, many refs per call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from imagebak.actions.port import StepContext
from imagebak.execution.records import Artifact, WorkItem
from imagebak.execution.states import ArtifactEvent
from imagebak.providers.base import ImageState, ImageStatus


def poll(ctx: StepContext, pending: Sequence[WorkItem]) -> None:
    """Refresh every pending artifact with one batched status call per account and region."""
    groups: defaultdict[tuple[str, str], list[WorkItem]] = defaultdict(list)
    for item in pending:
        groups[(item.account, item.artifact.region)].append(item)
    for (account, region), items in groups.items():
        refs = [i.artifact.ref for i in items if i.artifact.ref]
        since = {
            i.artifact.ref: datetime.fromisoformat(i.artifact.submitted_at)
            for i in items
            if i.artifact.ref and i.artifact.submitted_at
        }  # a resumed run's grace for eventual consistency
        statuses = ctx.provider(account).image_status(region, refs, submitted_at=since)
        for item in items:
            status = statuses.get(item.artifact.ref or "")
            if status is None or status.state is ImageState.PENDING:
                _progress(item.artifact, status)
            else:
                _settle(ctx, item, status)


def _progress(artifact: Artifact, status: ImageStatus | None) -> None:
    """Still being made: remember progress and an id once the vendor assigns one (not journaled)."""
    artifact.fire(ArtifactEvent.POLLED)
    if status is not None:
        artifact.progress = status.progress if status.progress is not None else artifact.progress
        artifact.image_id = status.image_id or artifact.image_id


def _settle(ctx: StepContext, item: WorkItem, status: ImageStatus) -> None:
    execution, work, artifact = item
    artifact.finished_at = ctx.now().isoformat()
    artifact.image_id = status.image_id or artifact.image_id
    artifact.name = status.name or artifact.name  # the name the cloud actually gave it (JD shortens)
    artifact.extra_image_ids = list(status.extra_image_ids) or artifact.extra_image_ids  # failed ones too: cleanup
    if status.state is ImageState.AVAILABLE:
        artifact.fire(ArtifactEvent.READY)
        artifact.size_gb = status.size_gb or artifact.size_gb
        artifact.progress = 100
    else:
        artifact.fire(ArtifactEvent.BROKEN)
        artifact.detail = status.detail or (
            "the image disappeared" if status.state is ImageState.MISSING else "the cloud reported the image as failed"
        )
    ctx.save(execution, work, durable=False)  # lost in a crash: the next run polls it again
    ctx.event(
        execution,
        work,
        step="wait",
        outcome=artifact.state.value,
        region=artifact.region,
        image_id=artifact.image_id,
        detail=artifact.detail or None,
    )


def broken(ctx: StepContext, items: Sequence[WorkItem], detail: str) -> None:
    """The status call itself failed for good (not transient): these artifacts cannot be followed."""
    for execution, work, artifact in items:
        artifact.fire(ArtifactEvent.BROKEN)
        artifact.detail = detail
        ctx.save(execution, work)
