"""One module per step of an execution: eligibility, disks, quota, create, wait, copy, adoption.

Steps get a narrow ``StepContext`` (port.py), never the engine. A step that ends an instance's
work raises ``Skip`` or ``Fail`` with the reason; a cloud error becomes an ``Outcome`` through
``outcome_of``, the one place that decides what is retried later and what is final.
"""

from __future__ import annotations

from imagebak.execution.states import Outcome
from imagebak.providers.base import ErrorKind, ProviderError


class StepEnded(Exception):
    """Ends an instance's work in this execution, with a named outcome and a reason for the log."""

    outcome = Outcome.FAILED

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Skip(StepEnded):
    """Not imageable, for a reason that is no failure (e.g. a local system disk)."""

    outcome = Outcome.SKIPPED


class QuotaSkip(StepEnded):
    """No quota left: nothing was created (the run exits 7)."""

    outcome = Outcome.QUOTA_SKIP


class Fail(StepEnded):
    outcome = Outcome.FAILED


def outcome_of(error: ProviderError) -> Outcome:
    """Transient faults and conflicts (busy, limits full) are retried on a later pass; the rest is final."""
    if error.transient or error.kind is ErrorKind.CONFLICT:
        return Outcome.RETRY_LATER
    return Outcome.QUOTA_SKIP if error.kind is ErrorKind.QUOTA else Outcome.FAILED
