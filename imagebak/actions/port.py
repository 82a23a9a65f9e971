"""What a step may use of the run it is part of: the narrow port the engine hands to every step.

Steps never see the engine. They get a provider per account, the clock, a journal write for
the one record they changed, the execution log, and the per-run caches of instances and quota.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from imagebak.execution.records import Execution, InstanceWork
from imagebak.providers.base import InstanceInfo, Provider, ProviderError

if TYPE_CHECKING:
    from imagebak.actions.quota import QuotaBudget


class StepContext(Protocol):
    def provider(self, account: str) -> Provider:
        """The account's adapter (built on first use)."""
        ...

    def now(self) -> datetime: ...

    def save(self, execution: Execution, work: InstanceWork, *, durable: bool = True) -> None:
        """Journal one instance's record: called before and after every mutating cloud call.

        ``durable=False`` for a record of what the cloud answered (accepted, polled): the cloud can
        tell a resumed run again, so it need not reach the disk before the run goes on.
        """
        ...

    def event(self, execution: Execution, work: InstanceWork | None, **fields: Any) -> None:
        """One line of the execution log."""
        ...

    def error_event(
        self, execution: Execution, work: InstanceWork | None, step: str, error: ProviderError, **fields: Any
    ) -> None:
        """One execution-log line for a classified cloud error (code, request id, message)."""
        ...

    def budget(self, account: str, region: str) -> QuotaBudget:
        """The quota budget of an account and region, read once per run."""
        ...

    def instance(self, account: str, region: str, instance_id: str) -> InstanceInfo:
        """The instance as first fetched in this run (fetched again by a resumed run)."""
        ...
