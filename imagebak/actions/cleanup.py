"""Removing what imagebak itself made and no longer needs: a failed image or copy before it is made again."""

from __future__ import annotations

from imagebak.actions import outcome_of
from imagebak.actions.port import StepContext
from imagebak.execution.records import Artifact, Execution
from imagebak.execution.states import Outcome
from imagebak.providers.base import ProviderError


def discard(ctx: StepContext, execution: Execution, artifact: Artifact) -> bool:
    """Delete a failed image (and what belongs to it: Huawei data images) before it is made again.

    False when the cloud could not delete it for now: the failed artifact stays recorded and the
    delete is tried again on the next pass, so nothing imagebak made is ever forgotten in the cloud.
    A refusal that retrying cannot change is logged with the image ids, and the retry goes ahead.
    """
    provider = ctx.provider(execution.policy.account)
    for image_id in [i for i in (artifact.image_id, *artifact.extra_image_ids) if i]:
        try:
            provider.delete_image(artifact.region, image_id)
        except ProviderError as error:
            ctx.error_event(execution, None, "cleanup", error, image_id=image_id, region=artifact.region)
            if outcome_of(error) is Outcome.RETRY_LATER:
                return False
    return True
