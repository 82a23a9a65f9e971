"""Retrying transient cloud faults with tenacity, the same way for every vendor.

Adapters turn SDK exceptions into classified ``ProviderError``s; this module retries the
transient ones (throttling, 5xx, timeouts) with exponential backoff and full jitter, bounded
both by attempts and by a deadline, and re-raises everything else at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import tenacity

from imagebak.providers.base import ProviderError, RetryPolicy

__all__ = ["RetryPolicy", "call_with_retry", "classified"]

T = TypeVar("T")

_run_deadline = float("inf")  # monotonic: no retry starts after it (see ``until``)


@contextlib.contextmanager
def until(deadline: float) -> Iterator[None]:
    """While a run lasts, no retry of any call starts after its deadline (``--deadline``)."""
    global _run_deadline
    previous, _run_deadline = _run_deadline, deadline
    try:
        yield
    finally:
        _run_deadline = previous


def _past_run_deadline(_state: tenacity.RetryCallState) -> bool:
    return time.monotonic() >= _run_deadline


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
