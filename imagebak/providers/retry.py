"""Retrying transient cloud faults with tenacity, the same way for every vendor.

Adapters turn SDK exceptions into classified ``ProviderError``s; this module retries the
transient ones (throttling, 5xx, timeouts) with exponential backoff and full jitter, bounded
both by attempts and by a deadline, and re-raises everything else at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from imagebak.providers.base import ProviderError, RetryPolicy

__all__ = ["RetryPolicy", "call_with_retry", "classified"]

T = TypeVar("T")


def call_with_retry(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], ProviderError] | None,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; classify any exception (``None``: ``fn`` raises only ProviderErrors, or bugs);
    retry while it is transient and the budget lasts."""

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts) | tenacity.stop_after_delay(policy.deadline_seconds),
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, ProviderError) and exc.transient),
        reraise=True,
        sleep=sleep,
    )
    return retrying(fn if classify is None else lambda: classified(fn, classify))


def classified(fn: Callable[[], T], classify: Callable[[BaseException], ProviderError]) -> T:
    """One call, not retried, whose failure is always a classified ProviderError."""
    try:
        return fn()
    except ProviderError:
        raise
    except Exception as exc:  # SDK exceptions have no common base; classify decides
        raise classify(exc) from None
