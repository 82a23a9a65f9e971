"""Step 6: copy each available image to every destination region, within the vendor's limits.

Limits honoured: Huawei's five cross-region copies in flight per account, JD's ten images per
copyImages call, and the per-region size limit of cross-region copies. A refused batch affects
only its own copies: the other routes go on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from imagebak.actions import outcome_of
from imagebak.actions.adoption import submit_once
from imagebak.actions.port import StepContext
from imagebak.execution.records import Artifact, Execution, InstanceWork, WorkItem
from imagebak.execution.states import ArtifactEvent, ArtifactState, Outcome
from imagebak.ownership import idempotency_key, ownership_tags
from imagebak.providers.base import CopySpec, ErrorKind, ProviderError


def plan(execution: Execution, work: InstanceWork, attempt: int = 1) -> None:
    """One copy artifact per destination region and per source image (Huawei data images too)."""
    image = work.image
    assert image is not None and image.image_id is not None
    sources = [(image.image_id, image.name)] + [
        (extra, f"{image.name}-data{n}") for n, extra in enumerate(image.extra_image_ids, start=1)
    ]  # distinct names: on vendors without copy tags, a resumed run finds a copy by its name
    for dest, _vault in execution.policy.copy_to:
        for source, name in sources:
            slot = f"{dest}/{source}"
            if slot in work.copies:
                continue
            copy = work.copies[slot] = Artifact(
                key=idempotency_key(execution.policy_key, execution.run_id, work.instance_id, "copy", slot, attempt),
                name=name,
                region=dest,
                source_image_id=source,
                size_gb=image.size_gb if source == image.image_id else None,  # a data image's own size is unknown
                attempt=attempt,
            )
            if image.encrypted:
                copy.skip(Outcome.COPY_IMPOSSIBLE, "the image is encrypted: no cross-region copy of encrypted images")


def batches(ctx: StepContext, planned: Sequence[WorkItem], in_flight: Callable[[str], int]) -> list[list[WorkItem]]:
    """Planned copies in calls the vendor takes: one route per call, within its per-call and in-flight caps.

    ``in_flight(account)`` counts the account's copies being made now (for Huawei's cap of five);
    copies above a cap wait for a later pass. Copies above the size limit are skipped here.
    """
    routes: defaultdict[tuple[str, str, str], list[WorkItem]] = defaultdict(list)
    for item in planned:
        routes[(item.account, item.execution.policy.region, item.artifact.region)].append(item)
    room: dict[str, float] = {}
    calls: list[list[WorkItem]] = []
    for (account, _source, _dest), items in routes.items():
        limits = ctx.provider(account).limits
        items = [item for item in items if not _too_large(ctx, item, limits.copy_size_limit_gb)]
        if account not in room:
            cap = limits.max_concurrent_copies
            room[account] = float("inf") if cap is None else max(0, cap - in_flight(account))
        items = items[: int(min(room[account], len(items)))]
        room[account] -= len(items)
        step = max(1, limits.max_images_per_copy_call)
        calls += [items[start : start + step] for start in range(0, len(items), step)]
    return calls


def _too_large(ctx: StepContext, item: WorkItem, size_limits: Mapping[str, int]) -> bool:
    """Skip (with the reason) a copy above the source region's cross-region size limit."""
    execution, work, artifact = item
    region = execution.policy.region
    limit = size_limits.get(region)
    if limit is None or artifact.size_gb is None or artifact.size_gb <= limit:
        return False
    artifact.skip(
        Outcome.COPY_IMPOSSIBLE,
        f"{artifact.size_gb} GB exceeds the {limit} GB limit of cross-region copies from {region}",
    )
    ctx.save(execution, work)
    ctx.event(execution, work, step="copy", outcome="skipped", region=artifact.region, detail=artifact.detail)
    return True


def submit_batch(ctx: StepContext, batch: Sequence[WorkItem]) -> None:
    """One copy call (or its adoption); a refusal ends or re-plans only these copies."""
    provider = ctx.provider(batch[0].account)
    try:
        submit_once(ctx, batch, "copy", lambda todo: provider.copy_images([_spec(item) for item in todo]))
    except ProviderError as error:
        _refused(ctx, batch, error)


def _spec(item: WorkItem) -> CopySpec:
    execution, work, artifact = item
    policy = execution.policy
    return CopySpec(
        source_region=policy.region,
        image_id=artifact.source_image_id or "",
        dest_region=artifact.region,
        name=artifact.name,
        description=f"imagebak copy of {artifact.source_image_id} from {policy.region}",
        tags=ownership_tags(policy=policy.name, instance=work.instance_id, run=execution.run_id, key=artifact.key),
        idempotency_key=artifact.key,
        vault_id=dict(policy.copy_to).get(artifact.region),
    )


def _refused(ctx: StepContext, batch: Sequence[WorkItem], error: ProviderError) -> None:
    """A batch the cloud did not take: try again later, or end those copies, as the error says."""
    outcome = outcome_of(error)
    for execution, work, artifact in batch:
        if artifact.state is not ArtifactState.SUBMITTING:
            continue
        if error.kind is ErrorKind.CONFLICT:
            artifact.fire(ArtifactEvent.REFUSED)  # refused outright (e.g. 5 copies in flight): plan it again
        elif outcome is Outcome.QUOTA_SKIP:  # no image quota in the destination: the source image stands
            artifact.skip(outcome, error.describe())
        elif outcome is Outcome.FAILED:  # transient ones stay submitting, looked up before resubmitting
            artifact.fire(ArtifactEvent.REJECTED)
            artifact.outcome, artifact.detail = outcome.value, error.describe()
        ctx.save(execution, work)
    first = batch[0]
    ctx.error_event(first.execution, None, "copy", error)


def replan_failed(execution: Execution, work: InstanceWork, slot: str) -> None:
    """A failed copy with attempts left: a fresh artifact (new key) takes its slot."""
    failed = work.copies.pop(slot)
    plan(execution, work, attempt=failed.attempt + 1)


def tag(ctx: StepContext, item: WorkItem) -> None:
    """Give an available copy the ownership tags its copy call could not carry (a no-op where it could)."""
    execution, work, artifact = item
    tags = ownership_tags(
        policy=execution.policy.name, instance=work.instance_id, run=execution.run_id, key=artifact.key
    )
    try:
        ctx.provider(item.account).tag_image(artifact.region, artifact.image_id or "", tags)
    except ProviderError as error:
        ctx.error_event(execution, work, "tag", error, region=artifact.region, image_id=artifact.image_id)
        if outcome_of(error) is Outcome.RETRY_LATER:
            return  # tried again on the next pass, before the instance counts as done
        artifact.outcome, artifact.detail = Outcome.FAILED.value, f"ownership tags not set: {error.describe()}"
    else:
        artifact.tagged = True
    ctx.save(execution, work)
