"""Step 4: create the image, or adopt the one a killed run already created.

The artifact is journaled as ``submitting`` before the call; a resumed run that finds it so
first looks the image up by its idempotency-key tag, and only then calls again with the same
key (Aliyun deduplicates on ClientToken; the other adapters look up before creating).
"""

from __future__ import annotations

from imagebak.actions import Fail
from imagebak.actions.eligibility import fetch_instance, image_size_gb, select_devices
from imagebak.engine.context import RunContext
from imagebak.engine.naming import idempotency_key, image_name, ownership_tags
from imagebak.engine.records import (
    CREATING,
    NEW,
    PLANNED,
    SUBMITTING,
    Artifact,
    Execution,
    InstanceWork,
)
from imagebak.providers.base import ImageSpec


def new_image_artifact(ctx: RunContext, execution: Execution, work: InstanceWork, attempt: int) -> Artifact:
    policy = execution.policy
    return Artifact(
        key=idempotency_key(execution.policy_key, execution.run_id, work.instance_id, "image", attempt),
        name=image_name(
            policy.image_name,
            policy=policy.name,
            instance=work.instance_id,
            region=policy.region,
            moment=ctx.now(),
        ),
        region=policy.region,
        attempt=attempt,
    )


def prepare(ctx: RunContext, execution: Execution, work: InstanceWork) -> None:
    """Steps 1-3: eligibility, disk filter and quota, ending with an image artifact to submit."""
    policy = execution.policy
    provider = ctx.providers.get(policy.account)
    instance = fetch_instance(provider, policy.region, work.instance_id)
    ctx.cache_instance(policy.account, instance)
    devices, notes = select_devices(instance, policy.disks)
    for note in notes:
        ctx.event(execution, work, step="disks", outcome="note", message=note)
    ctx.budget(policy.account, policy.region).reserve(snapshots=len(devices))
    work.devices = devices
    work.status = CREATING
    work.image = new_image_artifact(ctx, execution, work, attempt=1)
    work.image.size_gb = image_size_gb(instance, devices)
    ctx.event(execution, work, step="eligibility", outcome="ok", devices=devices)


def submit(ctx: RunContext, execution: Execution, work: InstanceWork) -> None:
    """Submit (or adopt) the instance's image; afterwards it is pending with a ref."""
    if work.status == NEW:
        prepare(ctx, execution, work)
    image = work.image
    assert image is not None and image.state in (PLANNED, SUBMITTING)
    policy = execution.policy
    provider = ctx.providers.get(policy.account)
    if image.state == SUBMITTING and ctx.adopt(execution, work, image, "create"):
        return
    instance = ctx.instance(policy.account, policy.region, work.instance_id)
    cloud_devices = {d.device for d in instance.disks if d.category == "cloud"}
    if not set(work.devices) <= cloud_devices or "vda" not in work.devices:
        raise Fail(f"the disks of {work.instance_id} changed since the run started; it will be retried next run")
    tags = ownership_tags(policy=policy.name, instance=work.instance_id, run=execution.run_id, key=image.key)
    spec = ImageSpec(
        region=policy.region,
        instance=instance,
        devices=tuple(work.devices),
        all_disks=set(work.devices) == cloud_devices,
        name=image.name,
        description=policy.description or f"imagebak {policy.name} {work.instance_id}",
        tags=tags,
        idempotency_key=image.key,
    )
    image.state = SUBMITTING
    ctx.save(execution, work)  # recorded before the call: a crash from here on is resumed by adoption
    image.ref = provider.create_image(spec)
    ctx.submitted(execution, work, image, "create", name=image.name, devices=work.devices)
