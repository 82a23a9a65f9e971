"""Removing what imagebak itself made and no longer needs: a failed image or copy before it is made again."""

from __future__ import annotations

from imagebak.actions.port import StepContext
from imagebak.execution.records import Execution
from imagebak.providers.base import ProviderError


def discard(ctx: StepContext, execution: Execution, region: str, image_id: str | None) -> None:
    """Best effort: a failure is logged and the retry goes ahead."""
    if image_id is None:
        return
    try:
        ctx.provider(execution.policy.account).delete_image(region, image_id)
    except ProviderError as error:
        ctx.error_event(execution, None, "cleanup", error, image_id=image_id)
