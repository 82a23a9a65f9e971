"""The engine without the CLI: a policy file in tmp_path, a StateStore, ``engine.run`` on a fake cloud.

Time is a ManualClock shared by the model and the engine: the engine's sleep advances it, and its
deadline is read from it, so a run that waits an hour of cloud time takes milliseconds.
The harness also records every transition fired (``fired``), the record each journal write saved
(``trace``), and can kill the run at the k-th journal point.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from fakecloud import Killed, ModelProvider, Process

import imagebak.engine as engine_pkg
from imagebak.config import LoadedConfig, load_config
from imagebak.config.schema import PolicyFile
from imagebak.emulator.clock import ManualClock
from imagebak.emulator.model import Account, CloudModel, Image
from imagebak.emulator.rules import Latency
from imagebak.engine import RunOptions, RunReport, Verdict
from imagebak.engine import runner as runner_module
from imagebak.engine.journal import Journal
from imagebak.engine.runner import Engine
from imagebak.execution.records import Execution, InstanceWork
from imagebak.execution.states import Machine
from imagebak.ownership import TAG_POLICY
from imagebak.providers.base import ProviderLimits
from imagebak.state import StateStore, policy_key

ACCOUNT = "acct"
SOURCE = "cn-shanghai"
DESTS = ("cn-qingdao", "cn-beijing")
WEB = "i-web"  # cloud vda 40 GB + cloud vdb 100 GB
MIXED = "i-mixed"  # cloud vda 40 GB + local vdb
LOCAL_SYSTEM = "i-localsys"  # local system disk
MISSING = "i-missing"  # in no region
START = datetime(2024, 1, 1, 2, 0, tzinfo=timezone.utc)
POLL = 300.0
IMAGE_SECONDS, COPY_SECONDS = 600.0, 1200.0
KEY = policy_key(ACCOUNT, SOURCE, "nightly")

_VALIDATED: dict[str, PolicyFile] = {}  # policy file text -> its validated model
Fired = tuple[str, Enum, Enum, Enum]  # machine name, state, event, next state


class Harness:
    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder = folder
        self.clock = ManualClock(START)
        self.model = CloudModel(self.clock, seed=7)
        self.model.add_account(Account(ACCOUNT, "aliyun", "fake-key", "fake-secret", regions=[SOURCE, *DESTS]))
        cloud = {"category": "cloud"}
        self.model.add_instance(ACCOUNT, SOURCE, WEB, name="web", disks=[
            {**cloud, "device": "vda", "size_gb": 40, "is_system": True, "disk_id": ""},
            {**cloud, "device": "vdb", "size_gb": 100, "is_system": False, "disk_id": ""},
        ])  # fmt: skip
        self.model.add_instance(ACCOUNT, SOURCE, MIXED, name="mixed", disks=[
            {**cloud, "device": "vda", "size_gb": 40, "is_system": True, "disk_id": ""},
            {"category": "local", "device": "vdb", "size_gb": 800, "is_system": False, "disk_id": ""},
        ])  # fmt: skip
        self.model.add_instance(ACCOUNT, SOURCE, LOCAL_SYSTEM, name="localsys", disks=[
            {"category": "local", "device": "vda", "size_gb": 40, "is_system": True, "disk_id": ""},
        ])  # fmt: skip
        for op, seconds in (("image", IMAGE_SECONDS), ("snapshot", 300.0), ("copy", COPY_SECONDS)):
            self.model.set_latency(None, op, Latency(seconds))
        self.limits = ProviderLimits(max_images_per_copy_call=1, default_concurrency=4)
        self.process = Process()
        self.providers: list[ModelProvider] = []  # one per simulated process
        self.provider = self._new_provider()
        self.fired: list[Fired] = []
        self.trace: list[tuple[str, str, str | None, dict[str, str]]] = []  # each journal write's record
        self.journal_points = 0
        self.kill_before: int | None = None
        self.kill_after: int | None = None
        self._lock = threading.Lock()
        self.write_policies(self.policy())
        self._install(monkeypatch)

    # ---- the world -----------------------------------------------------------------------------

    def _new_provider(self) -> ModelProvider:
        provider = ModelProvider(self.model, self.clock, ACCOUNT, limits=self.limits, process=self.process)
        self.providers.append(provider)
        return provider

    def calls(self, method: str) -> int:
        """Calls of ``method`` by every process so far."""
        return sum(p.calls[method] for p in self.providers)

    @property
    def config(self) -> Path:
        return self.folder / "policies.yaml"

    def policy(self, **overrides: Any) -> dict[str, Any]:
        """A manual-only policy (its schedule starts in 2030) of the web instance, copied to both regions."""
        base = dict(name="nightly", account=ACCOUNT, region=SOURCE, start="2030-01-01T02:00:00+08:00", every="1d")
        return {**base, "disks": "all", "instances": [WEB], "copy_to": list(DESTS), "retry_failed": 1, **overrides}

    def write_policies(self, *policies: dict[str, Any]) -> None:
        document = {"version": 1, "state": "state.json", "log": "execution.log",
                    "accounts": {ACCOUNT: {"provider": "aliyun"}}, "policies": list(policies)}  # fmt: skip
        text = yaml.safe_dump(document, allow_unicode=True)
        self.config.write_text(text, encoding="utf-8")
        if text not in _VALIDATED:  # validation is the slow part of a run's set-up: once per document
            _VALIDATED[text] = load_config(str(self.config)).model
        self.loaded = LoadedConfig(self.config.resolve(), _VALIDATED[text])

    def set_limits(self, limits: ProviderLimits) -> None:
        self.limits = self.provider.limits = limits

    # ---- running -------------------------------------------------------------------------------

    def run(self, *policies: str, **options: Any) -> RunReport:
        """One ``imagebak run`` (manual when policies are named, else a cron tick), through ``engine.run``."""
        store = StateStore(self.folder / "state.json")
        opts = RunOptions(policies=policies, poll_interval=POLL, **options)
        return engine_pkg.run(self.loaded, store, opts, providers=self._provider_for, now=self.clock.now)

    def prune(self, **options: Any) -> tuple[list[Verdict], list[str]]:
        """``imagebak prune`` through ``engine.prune``."""
        store = StateStore(self.folder / "state.json")
        return engine_pkg.prune(self.loaded, store, self._provider_for, self.clock.now(), **options)

    def restart(self) -> None:
        """A new process after a kill: fresh provider (no faults, counters at zero), same cloud and state."""
        self.process = Process()
        self.provider = self._new_provider()
        self.kill_before = self.kill_after = None

    def _provider_for(self, account: str) -> ModelProvider:
        assert account == ACCOUNT
        return self.provider

    def _install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Engine sleep and deadline on the manual clock; record transitions and journal writes."""

        def sleep(seconds: float) -> None:
            self.clock.advance(seconds)

        monkeypatch.setattr(engine_pkg, "Engine", functools.partial(Engine, sleep=sleep))
        clock_time = SimpleNamespace(monotonic=lambda: self.clock.now().timestamp(), sleep=sleep)
        monkeypatch.setattr(runner_module, "time", clock_time)  # the deadline: Engine reads time.monotonic()

        fire = Machine.fire

        def recording_fire(machine: Machine[Any, Any], state: Any, event: Any) -> Any:
            target = fire(machine, state, event)
            with self._lock:
                self.fired.append((machine.name, state, event, target))
            return target

        monkeypatch.setattr(Machine, "fire", recording_fire)

        save, finish = Journal.save_instance, Journal.finish

        def save_instance(journal: Journal, execution: Execution, work: InstanceWork, *, durable: bool = True) -> None:
            self._journal_point(lambda: save(journal, execution, work, durable=durable))
            with self._lock:
                copies = {slot: c.state.value for slot, c in work.copies.items()}
                image = work.image.state.value if work.image else None
                self.trace.append((work.instance_id, work.status.value, image, copies))

        def finish_execution(journal: Journal, execution: Execution) -> None:
            self._journal_point(lambda: finish(journal, execution))

        monkeypatch.setattr(Journal, "save_instance", save_instance)
        monkeypatch.setattr(Journal, "finish", finish_execution)

    def _journal_point(self, write: Callable[[], None]) -> None:
        self.process.check()
        with self._lock:
            self.journal_points += 1
            point = self.journal_points
        if point == self.kill_before:
            self.process.kill()
        write()
        if point == self.kill_after:
            self.process.kill()

    # ---- looking at the outcome ----------------------------------------------------------------

    def transitions(self, machine: str) -> set[tuple[str, str, str]]:
        return {(s.value, e.value, t.value) for name, s, e, t in self.fired if name == machine}

    def state(self) -> dict[str, Any]:
        """The state as imagebak reads it from disk: ``state.json`` with its history log replayed."""
        return StateStore(self.folder / "state.json").read().data

    def events(self) -> list[dict[str, Any]]:
        path = self.folder / "execution.log"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def images(self, region: str = SOURCE) -> list[Image]:
        return self.model.list_images(ACCOUNT, region)

    def owned_images(self) -> list[Image]:
        """Every image in the cloud that carries imagebak's ownership tags."""
        return [i for region in (SOURCE, *DESTS) for i in self.images(region) if TAG_POLICY in i.tags]

    def tracked_ids(self) -> set[str]:
        """Every image id the state file knows (finished history and executions in flight)."""
        entry = self.state()["policies"].get(KEY, {})
        ids: set[str] = set()
        for summary in entry.get("history", []):
            for work in summary["instances"].values():
                ids.update([work["image_id"], *work["copies"].values()])
        for raw in entry.get("executions", {}).values():
            for work in raw["instances"].values():
                artifacts = [work["image"], *work["copies"].values()] if work["image"] else []
                ids.update(a["image_id"] for a in artifacts)
        return ids - {None}


def only_work(report: RunReport) -> InstanceWork:
    ((_, work),) = report.works()
    return work


__all__ = ["Harness", "Killed", "only_work"]
