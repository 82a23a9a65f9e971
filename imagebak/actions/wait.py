"""Step 5 (and the copy half of step 6): poll pending images, many refs per call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from imagebak.engine.context import RunContext
from imagebak.engine.records import AVAILABLE, FAILED, PENDING, Artifact, Execution, InstanceWork
from imagebak.providers.base import ImageState

Pending = tuple[Execution, InstanceWork, Artifact]


def poll(ctx: RunContext, pending: Sequence[Pending]) -> None:
    """Refresh every pending artifact with one batched status call per account and region."""
    groups: defaultdict[tuple[str, str], list[Pending]] = defaultdict(list)
    for item in pending:
        execution, _, artifact = item
        groups[(execution.policy.account, artifact.region)].append(item)
    for (account, region), items in groups.items():
        statuses = ctx.providers.get(account).image_status(region, [a.ref for _, _, a in items if a.ref])
        for execution, work, artifact in items:
            status = statuses.get(artifact.ref or "")
            if status is None or status.state == ImageState.PENDING:
                artifact.progress = status.progress if status else artifact.progress
                artifact.image_id = (status.image_id if status else None) or artifact.image_id
                continue
            artifact.finished_at = ctx.now().isoformat()
            if status.state == ImageState.AVAILABLE:
                artifact.state = AVAILABLE
                artifact.image_id = status.image_id or artifact.image_id
                artifact.size_gb = status.size_gb or artifact.size_gb
                artifact.extra_image_ids = list(status.extra_image_ids)
                artifact.progress = 100
            else:
                artifact.state = FAILED
                artifact.image_id = status.image_id or artifact.image_id
                artifact.detail = status.detail or (
                    "the image disappeared"
                    if status.state == ImageState.MISSING
                    else "the cloud reported the image as failed"
                )
            ctx.save(execution, work)
            ctx.event(
                execution,
                work,
                step="wait",
                outcome=artifact.state,
                region=artifact.region,
                image_id=artifact.image_id,
                detail=artifact.detail or None,
            )


def is_pending(artifact: Artifact | None) -> bool:
    return artifact is not None and artifact.state == PENDING
