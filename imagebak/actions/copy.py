"""Step 6: copy each available image to every destination region, within the vendor's limits.

Limits honoured: Huawei's five cross-region copies in flight per account, JD's ten images per
copyImages call, and the per-region size limit of cross-region copies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from imagebak.engine.context import RunContext
from imagebak.engine.naming import TAG_KEY, idempotency_key, ownership_tags
from imagebak.engine.records import PENDING, PLANNED, SKIPPED, SUBMITTING, Artifact, Execution, InstanceWork
from imagebak.providers.base import CopySpec

Planned = tuple[Execution, InstanceWork, Artifact]


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
            work.copies[slot] = Artifact(
                key=idempotency_key(execution.policy_key, execution.run_id, work.instance_id, "copy", slot, attempt),
                name=name,
                region=dest,
                source_image_id=source,
                size_gb=image.size_gb,
                attempt=attempt,
            )


def submit(ctx: RunContext, planned: Sequence[Planned]) -> None:
    """Submit planned copies grouped by account and route, as many per call as the vendor takes."""
    routes: defaultdict[tuple[str, str, str], list[Planned]] = defaultdict(list)
    for item in planned:
        execution, _, artifact = item
        routes[(execution.policy.account, execution.policy.region, artifact.region)].append(item)
    for (account, source_region, _dest), items in routes.items():
        provider = ctx.providers.get(account)
        limits = provider.limits
        items = [item for item in items if not _adopted_or_too_large(ctx, item, limits.copy_size_limit_gb)]
        if limits.max_concurrent_copies is not None:
            room = max(0, limits.max_concurrent_copies - ctx.copies_in_flight(account))
            items = items[:room]  # the rest wait for a later pass
        step = max(1, limits.max_images_per_copy_call)
        for start in range(0, len(items), step):
            _submit_batch(ctx, items[start : start + step], source_region)


def _adopted_or_too_large(ctx: RunContext, item: Planned, size_limits: Mapping[str, int]) -> bool:
    execution, work, artifact = item
    policy = execution.policy
    limit = size_limits.get(policy.region)
    if limit is not None and artifact.size_gb is not None and artifact.size_gb > limit:
        artifact.state = SKIPPED
        artifact.detail = (
            f"{artifact.size_gb} GB exceeds the {limit} GB limit of cross-region copies from {policy.region}"
        )
        ctx.save(execution, work)
        ctx.event(execution, work, step="copy", outcome="skipped", region=artifact.region, detail=artifact.detail)
        return True
    if artifact.state != SUBMITTING:
        return False
    found = ctx.providers.get(policy.account).find_images(artifact.region, {TAG_KEY: artifact.key}, name=artifact.name)
    if not found:
        return False
    artifact.ref, artifact.image_id, artifact.state = found[0].ref, found[0].image_id, PENDING
    ctx.save(execution, work)
    ctx.event(execution, work, step="copy", outcome="adopted", region=artifact.region, image_id=artifact.image_id)
    return True


def _submit_batch(ctx: RunContext, batch: Sequence[Planned], source_region: str) -> None:
    specs = []
    for execution, work, artifact in batch:
        policy = execution.policy
        vault = dict(policy.copy_to).get(artifact.region)
        whole = policy.disks == "all" and artifact.source_image_id == (work.image.image_id if work.image else None)
        specs.append(
            CopySpec(
                source_region=source_region,
                image_id=artifact.source_image_id or "",
                dest_region=artifact.region,
                name=artifact.name,
                description=f"imagebak copy of {artifact.source_image_id} from {source_region}",
                tags=ownership_tags(
                    policy=policy.name, instance=work.instance_id, run=execution.run_id, key=artifact.key
                ),
                idempotency_key=artifact.key,
                vault_id=vault,
                whole_image=whole,
            )
        )
        artifact.state = SUBMITTING
        ctx.save(execution, work)  # before the call, as for images
    account = batch[0][0].policy.account
    refs = ctx.providers.get(account).copy_images(specs)
    for execution, work, artifact in batch:
        artifact.ref = refs.get(artifact.source_image_id or "")
        if artifact.ref is None:
            continue  # not accepted: stays "submitting" and is looked up or resubmitted next pass
        ctx.submitted(execution, work, artifact, "copy", source_image_id=artifact.source_image_id)


def is_planned(artifact: Artifact) -> bool:
    return artifact.state in (PLANNED, SUBMITTING)
