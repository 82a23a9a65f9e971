"""Steps 1-4 for one instance: eligibility, disk filter, quota, then create the image (or adopt it).

``prepare`` ends with an image artifact to submit; ``submit`` sends it through
``actions.adoption``, so a resumed run or a retried call adopts the image an earlier submission
made instead of creating another.
"""

from __future__ import annotations

from imagebak.actions import Fail
from imagebak.actions.adoption import submit_once
from imagebak.actions.disks import image_size_gb, select_devices
from imagebak.actions.port import StepContext
from imagebak.execution.records import Artifact, Execution, InstanceWork, WorkItem
from imagebak.execution.states import WorkEvent, WorkStatus
from imagebak.ownership import idempotency_key, image_name, ownership_tags
from imagebak.providers.base import ImageSpec


def new_image_artifact(ctx: StepContext, execution: Execution, work: InstanceWork, attempt: int) -> Artifact:
    """The image to make for ``work``: its own name and an idempotency key unique to this attempt."""
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


def prepare(ctx: StepContext, execution: Execution, work: InstanceWork) -> None:
    """Steps 1-3: eligibility, disk filter and quota, ending with an image artifact to submit."""
    policy = execution.policy
    instance = ctx.instance(policy.account, policy.region, work.instance_id)
    devices, notes = select_devices(instance, policy.disks)
    for note in notes:
        ctx.event(execution, work, step="disks", outcome="note", message=note)
    ctx.budget(policy.account, policy.region).reserve(snapshots=len(devices))
    work.devices = devices
    work.image = new_image_artifact(ctx, execution, work, attempt=1)
    work.image.size_gb = image_size_gb(instance, devices)
    work.image.encrypted = any(d.encrypted for d in instance.disks if d.device in devices)
    work.fire(WorkEvent.PREPARED)
    ctx.event(execution, work, step="eligibility", outcome="ok", devices=devices)


def submit(ctx: StepContext, execution: Execution, work: InstanceWork) -> None:
    """Submit (or adopt) the instance's image; afterwards it is pending with a ref."""
    if work.status is WorkStatus.NEW:
        prepare(ctx, execution, work)
    image = work.image
    assert image is not None and image.open
    policy = execution.policy
    instance = ctx.instance(policy.account, policy.region, work.instance_id)
    cloud_devices = {d.device for d in instance.disks if d.category == "cloud"}
    if not set(work.devices) <= cloud_devices or "vda" not in work.devices:
        raise Fail(f"the disks of {work.instance_id} changed since the run started; it will be retried next run")
    spec = ImageSpec(
        region=policy.region,
        instance=instance,
        devices=tuple(work.devices),
        all_disks=policy.whole_image,  # as validation decided, whatever disks the instance has now
        name=image.name,
        description=policy.description or f"imagebak {policy.name} {work.instance_id}",
        tags=ownership_tags(policy=policy.name, instance=work.instance_id, run=execution.run_id, key=image.key),
        idempotency_key=image.key,
        vault_id=policy.vault,
    )
    provider = ctx.provider(policy.account)
    submit_once(ctx, [WorkItem(execution, work, image)], "create", lambda _: {image.key: provider.create_image(spec)})
