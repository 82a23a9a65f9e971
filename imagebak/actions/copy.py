"""Step 6: copy each available image to every destination region, within the vendor's limits.

Limits honoured: Huawei's five cross-region copies in flight per account, JD's ten images per
copyImages call, and the per-region size limit of cross-region copies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from imagebak.engine.context import RunContext
from imagebak.engine.naming import idempotency_key, ownership_tags
from imagebak.engine.records import PLANNED, SKIPPED, SUBMITTING, Artifact, Execution, InstanceWork
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
        items = [
            (execution, work, artifact)
            for execution, work, artifact in items
            if not _too_large(ctx, execution, work, artifact, limits.copy_size_limit_gb)
            and not (artifact.state == SUBMITTING and ctx.adopt(execution, work, artifact, "copy"))
        ]
        if limits.max_concurrent_copies is not None:
            room = max(0, limits.max_concurrent_copies - ctx.copies_in_flight(account))
            items = items[:room]  # the rest wait for a later pass
        step = max(1, limits.max_images_per_copy_call)
        for start in range(0, len(items), step):
            _submit_batch(ctx, items[start : start + step], source_region)


def _too_large(
    ctx: RunContext, execution: Execution, work: InstanceWork, artifact: Artifact, size_limits: Mapping[str, int]
) -> bool:
    """Skip (with the reason) a copy above the source region's cross-region size limit."""
    region = execution.policy.region
    limit = size_limits.get(region)
    if limit is None or artifact.size_gb is None or artifact.size_gb <= limit:
        return False
    artifact.state = SKIPPED
    artifact.detail = f"{artifact.size_gb} GB exceeds the {limit} GB limit of cross-region copies from {region}"
    ctx.save(execution, work)
    ctx.event(execution, work, step="copy", outcome="skipped", region=artifact.region, detail=artifact.detail)
    return True


def _submit_batch(ctx: RunContext, batch: Sequence[Planned], source_region: str) -> None:
    specs = []
    for execution, work, artifact in batch:
        policy = execution.policy
        vault = dict(policy.copy_to).get(artifact.region)
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
