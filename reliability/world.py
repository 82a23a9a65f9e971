"""One campaign world: an emulator process with a persistent state file, a policies.yaml for one vendor
pointing at it, and the imagebak state beside them. Trials run ``imagebak`` against it as subprocesses.

Why a subprocess emulator (``python -m imagebak emulator serve --state``) and not the embedded one:
the imagebak processes are SIGKILLed, and the cloud must outlive them exactly as a real one would,
keeping what they submitted. Why a virtual clock for imagebak (``IMAGEBAK_NOW``): each invocation is
a cron tick two minutes after the previous one, so imagebak's 60-second visibility grace has passed
at every follow-up, as it would in production, without the campaign sleeping through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from imagebak.emulator.admin import admin_call
from imagebak.emulator.fixture import DEFAULT_FIXTURE

REPO = Path(__file__).resolve().parents[1]
VENDORS = ("aliyun", "huawei", "jdcloud")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# Snapshot of the environment taken once: in-process CLI checks (CliRunner) swap os.environ while
# other lanes build the environments of their subprocesses.
BASE_ENV = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and not k.startswith("IMAGEBAK_")}
TICK = timedelta(minutes=2)  # virtual time between two imagebak invocations
FAR_FUTURE = "2031-01-01T00:00:00+00:00"  # policies never fall due on their own: only trials start them
QUOTA = {"image": 1_000_000, "snapshot": 1_000_000}  # a long segment must never be quota-limited

# Per vendor: the policies the campaign drives (instances of the packaged demo fixture). Huawei has a
# whole-machine policy and one with a data image, so an instance makes two images to copy there.
POLICIES: dict[str, list[dict[str, Any]]] = {
    "aliyun": [
        {
            "name": "rel-ali",
            "region": "cn-shanghai",
            "instances": ["i-uf6ujzde8gxd6ncf10ep", "i-uf6f91dhodzdoc9is0j8"],
            "copy_to": ["cn-qingdao", "cn-beijing"],
        }
    ],
    "huawei": [
        {
            "name": "rel-hw-whole",
            "region": "cn-north-4",
            "instances": ["6aa8b9e0-231b-4e14-b291-35bdd70a39d1"],
            "vault": "vault-n4",  # whole-machine images: the source region's CBR vault
            "copy_to": [
                {"region": "cn-east-3", "vault": "vault-dr-east-3"},
                {"region": "cn-south-1", "vault": "vault-dr-south-1"},
            ],
        },
        {
            "name": "rel-hw-data",
            "region": "cn-north-4",
            "disks": ["vda", "vdb"],
            "instances": ["4d82feac-ab62-46cd-b672-d6ae12b80aed"],
            "copy_to": ["cn-east-3"],
        },
    ],
    "jdcloud": [
        {
            "name": "rel-jd",
            "region": "cn-north-1",
            "instances": ["i-l1erbfqfoe", "i-7phkqdlmtt"],
            "copy_to": ["cn-east-2", "cn-south-1"],
        }
    ],
}
# Transient faults are retried quickly: storms make many of them, and the campaign must stay in minutes.
RETRY = {"attempts": 8, "initial_wait": 0.05, "max_wait": 0.5, "deadline": 20}
LATENCIES = {  # simulated seconds; with the default time scale an image takes ~0.5 s, a copy ~0.8 s
    "default": {
        "snapshot": {"base_seconds": 120, "per_gb_seconds": 1.0, "jitter": 0.2},
        "image": {"base_seconds": 300, "per_gb_seconds": 2.0, "jitter": 0.2},
        "copy": {"base_seconds": 600, "per_gb_seconds": 3.0, "jitter": 0.2},
    }
}
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")
_CLI_LOCK = threading.Lock()  # CliRunner swaps process-wide stdout and environment


class VirtualClock:
    """imagebak's "now": moves one ``TICK`` per invocation, never backwards (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(timezone.utc)).replace(microsecond=0)
        self._lock = threading.Lock()

    def tick(self) -> str:
        with self._lock:
            self._now += TICK
            return self._now.isoformat()


class World:
    """An emulator subprocess for one vendor plus the policy file and state imagebak uses against it."""

    def __init__(self, folder: Path, vendor: str, *, seed: int, time_scale: float) -> None:
        if vendor not in POLICIES:
            raise ValueError(f"unknown vendor {vendor!r} (one of {', '.join(VENDORS)})")
        self.folder = folder
        self.vendor = vendor
        self.seed = seed
        self.time_scale = time_scale
        self.clock = VirtualClock()
        self.emulator_state = folder / "emulated-cloud.json"
        self.state = folder / "state" / "state.json"
        self.config = folder / "policies.yaml"
        self.logs = folder / "logs"
        self.endpoint = ""
        self._port = 0
        self._emulator: subprocess.Popen[bytes] | None = None
        self._credentials: dict[str, str] = {}
        self._struck: Counter[str] = Counter()

    @property
    def policies(self) -> list[str]:
        return [p["name"] for p in POLICIES[self.vendor]]

    @property
    def source_regions(self) -> dict[str, str]:
        """Policy name -> the region its images are made in."""
        return {p["name"]: p["region"] for p in POLICIES[self.vendor]}

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Write the fixture, start the emulator, then write policies.yaml with its endpoint."""
        self.logs.mkdir(parents=True, exist_ok=True)
        fixture = self._fixture()
        fixture_path = self.folder / "fixture.yaml"
        fixture_path.write_text(yaml.safe_dump(fixture, sort_keys=False), encoding="utf-8")
        out = self.folder / "emulator.out"
        command = [sys.executable, "-m", "imagebak", "emulator", "serve", "--fixture", str(fixture_path)]
        command += ["--state", str(self.emulator_state), "--time-scale", f"{self.time_scale:g}", "--port", "0"]
        with out.open("wb") as sink:
            self._emulator = subprocess.Popen(
                command, cwd=self.folder, env=self._env(), stdout=sink, stderr=subprocess.STDOUT
            )
        self._port = self._wait_for_endpoint(out)
        self.endpoint = f"http://127.0.0.1:{self._port}"
        self.config.write_text(yaml.safe_dump(self._policy_file(fixture), sort_keys=False), encoding="utf-8")

    def stop(self) -> None:
        """SIGTERM (the emulator saves its state and exits), SIGKILL if it does not within 10 s."""
        proc, self._emulator = self._emulator, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> World:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_for_endpoint(self, out: Path, timeout: float = 30.0) -> int:
        assert self._emulator is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(out.read_text(encoding="utf-8", errors="replace"))
            if match:
                return int(match.group(2))
            if self._emulator.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the emulator did not start; see {out}")

    def _fixture(self) -> dict[str, Any]:
        """The packaged demo world, this vendor's accounts only, quotas out of the way, latencies fixed."""
        data = yaml.safe_load(DEFAULT_FIXTURE.read_text(encoding="utf-8"))
        accounts = [a for a in data["accounts"] if a["provider"] == self.vendor]
        for account in accounts:
            account["quotas"] = {region: dict(QUOTA) for region in account["regions"]}
            self._credentials = {"key": account["access_key_id"], "secret": account["secret"]}
        return {**data, "seed": self.seed, "latencies": LATENCIES, "faults": [], "accounts": accounts}

    def _policy_file(self, fixture: Mapping[str, Any]) -> dict[str, Any]:
        account: dict[str, Any] = {
            "provider": self.vendor,
            "endpoint": self.endpoint,
            "access_key_id_env": "RELIABILITY_ACCESS_KEY",
            "secret_env": "RELIABILITY_SECRET",
        }
        if self.vendor == "huawei":
            regions = fixture["accounts"][0]["regions"]
            account |= {"projects": dict(regions), "agency": "ims_admin_agency"}
        policies = [
            {"account": "rel", "start": FAR_FUTURE, "every": "1d", "disks": "all", "description": "", **p}
            for p in POLICIES[self.vendor]
        ]
        for policy in policies:
            policy["description"] = f"reliability campaign, {policy['name']}"
        return {
            "version": 1,
            "state": "state/state.json",
            "log": "state/execution.log",
            "retry": RETRY,
            "accounts": {"rel": account},
            "policies": policies,
        }

    # -- imagebak --------------------------------------------------------------------------------

    def _env(self, now: str | None = None) -> dict[str, str]:
        env = dict(BASE_ENV)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), BASE_ENV.get("PYTHONPATH")]))
        env["IMAGEBAK_CONFIG"] = str(self.config)
        env["RELIABILITY_ACCESS_KEY"] = self._credentials.get("key", "")
        env["RELIABILITY_SECRET"] = self._credentials.get("secret", "")
        if now is not None:
            env["IMAGEBAK_NOW"] = now
        return env

    def imagebak(self, args: Sequence[str], label: str) -> subprocess.Popen[bytes]:
        """Start ``python -m imagebak ARGS`` at the next tick of the virtual clock; output to logs/LABEL.out."""
        sink = (self.logs / f"{label}.out").open("wb")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "imagebak", *args],
                cwd=self.folder,
                env=self._env(self.clock.tick()),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        finally:
            sink.close()  # the child has its own descriptor

    def cli(self, args: Sequence[str]) -> tuple[int, str]:
        """Run an imagebak command in this process (the read-only checks: policy list, run --dry-run).

        Same CLI, same exit codes, without the cost of a Python start-up per check.
        """
        from click.testing import CliRunner

        from imagebak.cli import cli

        env = {k: v for k, v in self._env(self.clock.tick()).items() if k.startswith(("IMAGEBAK_", "RELIABILITY_"))}
        with _CLI_LOCK:
            result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)
        return result.exit_code, result.output

    def journals(self) -> list[Path]:
        """Write-ahead logs beside the state file: of live processes, or of dead ones not yet folded in."""
        return sorted(self.state.parent.glob(f"{self.state.name}.wal.*"))

    # -- emulator admin API ----------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One call of the emulator's admin API (``/_emulator/PATH``); raises on a non-200 answer."""
        return admin_call("127.0.0.1", self._port, method, path, body)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the emulator serves no cloud request. A follow-up run's clock is two minutes after the
        killed run's: by then a cloud has long answered the calls the dead process left (a slowed or hung
        one included), so the emulator must have too before the follow-up looks for what they made."""
        deadline = time.monotonic() + timeout
        while self.admin("GET", "health").get("in_flight") and time.monotonic() < deadline:
            time.sleep(0.02)

    def faults_struck(self) -> Counter[str]:
        """Injected faults by kind (throttled, error, slowed, hung, ...) since the previous call."""
        per_action = self.admin("GET", "counters")["faults_injected"].get(self.vendor, {})
        total: Counter[str] = Counter()
        for kinds in per_action.values():
            total.update(kinds)
        fresh = total - self._struck
        self._struck = total
        return fresh

    def cloud(self) -> dict[str, Any]:
        """The emulator's persistent state, saved just now: any admin POST brings statuses up to date and saves.

        The POST used clears the faults of a vendor that does not exist, so it changes nothing.
        """
        self.admin("POST", "faults/clear", {"vendor": "-", "action": "-"})
        return json.loads(self.emulator_state.read_text(encoding="utf-8"))


@contextlib.contextmanager
def running(folder: Path, vendor: str, *, seed: int, time_scale: float) -> Iterator[World]:
    """A started world, stopped on exit (its folder is kept: the caller decides whether to remove it)."""
    world = World(folder, vendor, seed=seed, time_scale=time_scale)
    world.start()
    try:
        yield world
    finally:
        world.stop()
