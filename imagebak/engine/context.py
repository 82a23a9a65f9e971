"""The engine's side of the step port: providers, journal, execution log, clock and per-run caches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from imagebak.actions.eligibility import fetch_instance
from imagebak.actions.quota import QuotaBudget
from imagebak.engine.events import EventLog
from imagebak.engine.journal import Journal
from imagebak.errors import ImagebakError
from imagebak.execution.records import Execution, InstanceWork
from imagebak.providers.base import InstanceInfo, Provider, ProviderError


class ProviderPool:
    """Builds each account's provider on first use, so only the SDKs of vendors in use are imported."""

    def __init__(self, factory: Callable[[str], Provider]) -> None:
        self._factory = factory
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def get(self, account: str) -> Provider:
        with self._lock:
            if account not in self._built:
                self._built[account] = self._factory(account)
            return self._built[account]

    def problem(self, account: str) -> str | None:
        """Why the account's provider cannot be built (credentials, SDK, account gone), or None."""
        try:
            self.get(account)
        except ImagebakError as exc:
            return str(exc)
        return None


class RunContext:
    """Implements ``actions.port.StepContext`` for one invocation."""

    def __init__(
        self, providers: ProviderPool, journal: Journal, events: EventLog, now: Callable[[], datetime]
    ) -> None:
        self._providers = providers
        self.journal = journal
        self.events = events
        self.now = now
        self._budgets: dict[tuple[str, str], QuotaBudget] = {}
        self._instances: dict[tuple[str, str, str], InstanceInfo] = {}
        self._lock = threading.Lock()

    def provider(self, account: str) -> Provider:
        return self._providers.get(account)

    def save(self, execution: Execution, work: InstanceWork) -> None:
        self.journal.save_instance(execution, work)

    def event(self, execution: Execution, work: InstanceWork | None, **fields: Any) -> None:
        policy = execution.policy
        self.events.emit(
            run=execution.run_id,
            policy=policy.name,
            account=policy.account,
            source_region=policy.region,
            instance=work.instance_id if work else None,
            **fields,
        )

    def error_event(
        self, execution: Execution, work: InstanceWork | None, step: str, error: ProviderError, **fields: Any
    ) -> None:
        fields.setdefault("outcome", "error")
        self.event(
            execution,
            work,
            step=step,
            error_code=error.code,
            request_id=error.request_id,
            message=error.message,
            **fields,
        )

    def budget(self, account: str, region: str) -> QuotaBudget:
        with self._lock:
            key = (account, region)
            if key not in self._budgets:
                self._budgets[key] = QuotaBudget(self.provider(account), region)
            return self._budgets[key]

    def instance(self, account: str, region: str, instance_id: str) -> InstanceInfo:
        key = (account, region, instance_id)
        if key not in self._instances:
            self._instances[key] = fetch_instance(self.provider(account), region, instance_id)
        return self._instances[key]
