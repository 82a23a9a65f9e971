"""The one home of idempotent submission: no image or copy is ever made twice.

Every create and copy goes through ``submit_once``, for every vendor. Each artifact is journaled
``submitting`` before its call. Any attempt that may follow one which reached the cloud — a
retry after a timeout or a lost reply in this run, or a resumed run that finds ``submitting``
in the state file — first asks the adapter for the image an earlier submission with the same
idempotency key made (``Provider.find_submitted``) and adopts it. A first attempt on a fresh
artifact costs no look-up. Transient faults are retried with the account's retry policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from imagebak.actions.port import StepContext
from imagebak.execution.records import WorkItem
from imagebak.execution.states import ArtifactEvent, ArtifactState
from imagebak.providers.retry import call_with_retry

Submit = Callable[[Sequence[WorkItem]], Mapping[str, str]]  # items -> {idempotency key: ref}


def submit_once(ctx: StepContext, items: Sequence[WorkItem], step: str, submit: Submit) -> None:
    """Submit (or adopt) every item of one account; items the cloud did not accept stay ``submitting``.

    Raises the last ProviderError when retrying does not help; items stay ``submitting`` then, so
    the next pass or run looks them up before submitting again.
    """
    if not items:
        return
    provider = ctx.provider(items[0].account)
    uncertain = {item.artifact.key for item in items if item.artifact.state is ArtifactState.SUBMITTING}
    for item in items:
        item.artifact.fire(ArtifactEvent.SUBMIT)
        ctx.save(item.execution, item.work)  # before the call: a crash from here on is resumed by adoption
    todo = list(items)

    def attempt() -> None:
        nonlocal todo
        for item in [i for i in todo if i.artifact.key in uncertain]:
            artifact = item.artifact
            ref = provider.find_submitted(artifact.region, artifact.key, artifact.name)
            if ref is not None:
                _record(ctx, item, step, ref, ArtifactEvent.ADOPTED)
        todo = [i for i in todo if i.artifact.state is ArtifactState.SUBMITTING]
        if not todo:
            return
        uncertain.update(i.artifact.key for i in todo)  # from here on, any of them may reach the cloud
        refs = submit(todo)
        for item in todo:
            ref = refs.get(item.artifact.key)
            if ref is not None:
                _record(ctx, item, step, ref, ArtifactEvent.ACCEPTED)
        todo = [i for i in todo if i.artifact.state is ArtifactState.SUBMITTING]

    call_with_retry(attempt, classify=None, policy=provider.retry_policy, sleep=provider.pause)


def _record(ctx: StepContext, item: WorkItem, step: str, ref: str, event: ArtifactEvent) -> None:
    """The cloud has the artifact (accepted now, or adopted from an earlier submission): poll it from now on."""
    execution, work, artifact = item
    artifact.fire(event)
    artifact.ref = ref
    if event is ArtifactEvent.ADOPTED:
        artifact.image_id = ref  # find_submitted answers with the image id itself
    artifact.submitted_at = artifact.submitted_at or ctx.now().isoformat()
    ctx.save(execution, work)
    ctx.event(
        execution,
        work,
        step=step,
        outcome="adopted" if event is ArtifactEvent.ADOPTED else "submitted",
        region=artifact.region,
        image_ref=ref,
        name=artifact.name,
        source_image_id=artifact.source_image_id,
    )
