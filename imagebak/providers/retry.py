"""Retrying transient cloud faults with tenacity, the same way for every vendor.

Adapters turn SDK exceptions into classified ``ProviderError``s; this module retries the
transient ones (throttling, 5xx, timeouts) with exponential backoff and full jitter, bounded
both by attempts and by a deadline, and re-raises everything else at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from imagebak.providers.base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_wait: float = 0.5  # seconds; doubles per attempt, with full jitter
    max_wait: float = 20.0
    deadline_seconds: float = 180.0


def call_with_retry(
    fn: Callable[[], T],
    *,
    classify: Callable[[BaseException], ProviderError],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; classify any exception; retry while it is transient and the budget lasts."""

    def attempt() -> T:
        try:
            return fn()
        except ProviderError:
            raise
        except Exception as exc:  # SDK exceptions have no common base; classify decides
            raise classify(exc) from None

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts)
        | tenacity.stop_after_delay(policy.deadline_seconds),
        wait=tenacity.wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait),
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, ProviderError) and exc.transient),
        reraise=True,
        sleep=sleep,
    )
    return retrying(attempt)


def adopt_or_submit(
    find_existing: Callable[[], T | None],
    submit: Callable[[], T],
    *,
    classify: Callable[[BaseException], ProviderError],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """For creates the vendor cannot deduplicate: every attempt, retries included, first adopts what
    an earlier attempt (whose reply was lost) or an earlier run made, so nothing is created twice."""

    def attempt() -> T:
        found = find_existing()
        return found if found is not None else submit()

    return call_with_retry(attempt, classify=classify, policy=policy, sleep=sleep)
