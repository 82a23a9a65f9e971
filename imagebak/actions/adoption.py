"""The one home of idempotent submission: no image or copy is ever made twice.

Every create and copy goes through ``submit_once``, for every vendor. Each artifact is journaled
``submitting`` before its call. Any attempt that may follow one which reached the cloud — a
retry after a timeout or a lost reply in this run, or a resumed run that finds ``submitting``
in the state file — first asks the adapter for the image an earlier submission with the same
idempotency key made (``Provider.find_submitted``) and adopts it, even a failed one: the next poll
then sees it failed, and the failure path deletes it before the image is made again under a new key,
so nothing with imagebak's key is left untracked. A first attempt on a fresh
artifact costs no look-up. A submission made moments ago that the look-up does not show yet is
looked up again later rather than sent again (after a lost reply or a crash, not after an error
answer). Transient faults are retried with the account's retry policy; a throttled call was
refused outright, so it needs no look-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from imagebak.actions.port import StepContext
from imagebak.execution.records import Artifact, WorkItem
from imagebak.execution.states import ArtifactEvent, ArtifactState
from imagebak.providers.base import ErrorKind, ProviderError
from imagebak.providers.retry import call_with_retry

Submit = Callable[[Sequence[WorkItem]], Mapping[str, str]]  # items -> {idempotency key: ref}

# Clouds list a new image after a short delay (eventual consistency): within this time of a
# submission, "not found" does not prove it was never made, so it is looked up again, not resent.
VISIBILITY_GRACE = timedelta(seconds=60)


def submit_once(ctx: StepContext, items: Sequence[WorkItem], step: str, submit: Submit) -> None:
    """Submit (or adopt) every item of one account; items the cloud did not accept stay ``submitting``.

    Raises the last ProviderError when retrying does not help; items stay ``submitting`` then, so
    the next pass or run looks them up before submitting again.
    """
    if not items:
        return
    provider = ctx.provider(items[0].account)
    uncertain = {item.artifact.key for item in items if item.artifact.state is ArtifactState.SUBMITTING}
    replies_lost = set(uncertain)  # a crash, or a timeout: it may exist and not show in a list yet
    todo = list(items)

    def attempt() -> None:
        nonlocal todo
        unseen = []
        for item in [i for i in todo if i.artifact.key in uncertain]:
            artifact = item.artifact
            ref = provider.find_submitted(artifact.region, artifact.key, artifact.name)
            if ref is not None:
                _record(ctx, item, step, ref, ArtifactEvent.ADOPTED)
            elif artifact.key in replies_lost and _just_attempted(artifact, ctx.now()):
                unseen.append(item)  # it may exist but not show yet: look again on the next pass
        todo = [i for i in todo if i.artifact.state is not ArtifactState.PENDING and i not in unseen]
        if not todo:
            return
        attempted_at = ctx.now().isoformat()
        for item in todo:
            item.artifact.fire(ArtifactEvent.SUBMIT)
            item.artifact.attempted_at = attempted_at
            ctx.save(item.execution, item.work)  # before the call: a crash from here on is resumed by adoption
        keys = {i.artifact.key for i in todo}
        uncertain.update(keys)
        replies_lost.difference_update(keys)
        try:
            refs = submit(todo)
        except ProviderError as error:
            if error.kind is ErrorKind.THROTTLED:  # refused before anything was made
                uncertain.difference_update(keys)
            elif error.kind is ErrorKind.TIMEOUT:  # the cloud may have done it without our hearing
                replies_lost.update(keys)
            raise
        for item in todo:
            ref = refs.get(item.artifact.key)
            if ref is not None:
                _record(ctx, item, step, ref, ArtifactEvent.ACCEPTED)
        todo = [i for i in todo if i.artifact.state is ArtifactState.SUBMITTING]

    call_with_retry(attempt, classify=None, policy=provider.retry_policy, sleep=provider.pause)


def _just_attempted(artifact: Artifact, now: datetime) -> bool:
    """Submitted so recently that a list or describe call may not show the result yet."""
    if artifact.attempted_at is None:
        return False
    return now - datetime.fromisoformat(artifact.attempted_at) < VISIBILITY_GRACE


def _record(ctx: StepContext, item: WorkItem, step: str, ref: str, event: ArtifactEvent) -> None:
    """The cloud has the artifact (accepted now, or adopted from an earlier submission): poll it from now on."""
    execution, work, artifact = item
    artifact.fire(event)
    artifact.ref = ref
    if event is ArtifactEvent.ADOPTED:
        artifact.image_id = ref  # find_submitted answers with the image id itself
    artifact.submitted_at = artifact.submitted_at or ctx.now().isoformat()
    ctx.save(execution, work, durable=False)  # lost in a crash: still ``submitting`` on disk, so adopted again
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
