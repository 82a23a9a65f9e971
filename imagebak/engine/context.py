"""What the steps of one run share: providers, journal, event log, clock, caches and budgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from imagebak.actions.eligibility import fetch_instance
from imagebak.actions.quota import QuotaBudget
from imagebak.engine.events import EventLog
from imagebak.engine.journal import Journal
from imagebak.engine.naming import TAG_KEY
from imagebak.engine.records import PENDING, Artifact, Execution, InstanceWork
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


class RunContext:
    def __init__(
        self, providers: ProviderPool, journal: Journal, events: EventLog, now: Callable[[], datetime]
    ) -> None:
        self.providers = providers
        self.journal = journal
        self.events = events
        self.now = now
        self.executions: list[Execution] = []
        self._budgets: dict[tuple[str, str], QuotaBudget] = {}
        self._instances: dict[tuple[str, str, str], InstanceInfo] = {}
        self._lock = threading.Lock()

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

    def submitted(self, execution: Execution, work: InstanceWork, artifact: Artifact, step: str, **fields: Any) -> None:
        """Record that the cloud accepted a create or copy: the artifact now has a ref to poll."""
        artifact.state = PENDING
        artifact.submitted_at = self.now().isoformat()
        self.save(execution, work)
        self.event(
            execution, work, step=step, outcome="submitted", region=artifact.region, image_ref=artifact.ref, **fields
        )

    def adopt(self, execution: Execution, work: InstanceWork, artifact: Artifact, step: str) -> bool:
        """For a submission that may have reached the cloud: take over its image if the cloud has one."""
        provider = self.providers.get(execution.policy.account)
        found = provider.find_images(artifact.region, {TAG_KEY: artifact.key}, name=artifact.name)
        if not found:
            return False
        artifact.ref, artifact.image_id, artifact.state = found[0].ref, found[0].image_id, PENDING
        self.save(execution, work)
        self.event(
            execution,
            work,
            step=step,
            outcome="adopted",
            region=artifact.region,
            image_id=artifact.image_id or artifact.ref,
        )
        return True

    def budget(self, account: str, region: str) -> QuotaBudget:
        with self._lock:
            key = (account, region)
            if key not in self._budgets:
                self._budgets[key] = QuotaBudget(self.providers.get(account), region)
            return self._budgets[key]

    def cache_instance(self, account: str, instance: InstanceInfo) -> None:
        self._instances[(account, instance.region, instance.instance_id)] = instance

    def instance(self, account: str, region: str, instance_id: str) -> InstanceInfo:
        """The instance as seen earlier in this run, else fetched again (a resumed run)."""
        key = (account, region, instance_id)
        if key not in self._instances:
            self._instances[key] = fetch_instance(self.providers.get(account), region, instance_id)
        return self._instances[key]

    def copies_in_flight(self, account: str) -> int:
        return sum(
            1
            for execution in self.executions
            if execution.policy.account == account
            for work in execution.instances.values()
            for copy in work.copies.values()
            if copy.state == PENDING
        )
