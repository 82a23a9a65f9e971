"""The engine's side of the step port: providers, journal, execution log, clock and per-run caches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from imagebak.actions.eligibility import eligible
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
        self._instances: dict[tuple[str, str, str], InstanceInfo | None] = {}  # None: the cloud has none
        self._lock = threading.Lock()

    def provider(self, account: str) -> Provider:
        return self._providers.get(account)

    def save(self, execution: Execution, work: InstanceWork, *, durable: bool = True) -> None:
        self.journal.save_instance(execution, work, durable=durable)

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
            self._instances[key] = self.provider(account).get_instance(region, instance_id)
        return eligible(self._instances[key], region, instance_id)

    def describe_instances(self, account: str, region: str, instance_ids: list[str]) -> None:
        """Describe the instances a pass is about to image, many per call where the vendor allows it.
        Best effort: an instance this does not describe is asked for alone by its create step, which
        then meets the error itself."""
        wanted = [i for i in instance_ids if (account, region, i) not in self._instances]
        try:
            found = self.provider(account).get_instances(region, wanted) if wanted else {}
        except ProviderError:
            return
        with self._lock:
            self._instances.update({(account, region, i): info for i, info in found.items()})
