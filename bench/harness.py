"""What the benchmarks share: the synthetic world, the policy file, the instrumented run, the latency model.

``run_scale.py`` (one big run, many figures) and ``compare.py`` (issue #13's comparison table) both
build an emulator fixture, start the emulator on it, write a ``policies.yaml`` for it, run
``imagebak run --all`` and read the same counters; they differ only in which runs they make and what
they print. Keeping these pieces here means both measure the same thing the same way.

The emulator runs in a process of its own (``python -m imagebak emulator serve``, like moto's server
mode): a real cloud's CPU is not its client's, and an emulator in the bench's process would compete
with imagebak and the SDKs for one GIL. imagebak runs in the bench's process, instrumented
(``instrumented``: the journal's bytes, the refs polled); the emulator's calls and CPU seconds are
read over its admin API (``EmulatorProcess``).

Importing this module first also puts the checkout it lives in at the front of ``sys.path`` (and of
the emulator's ``PYTHONPATH``): a venv's editable install may point at another checkout, and a
benchmark must measure the code beside it. Everything stays on 127.0.0.1, with the fake credentials
of the bench's fixture.
"""

# ruff: noqa: E402  (the imports below must come after the sys.path fix)

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(CHECKOUT)]:
    sys.path.insert(0, str(CHECKOUT))

import contextlib
import json
import os
import platform
import random
import re
import resource
import select
import string
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from click.testing import CliRunner

import imagebak
from imagebak.actions import wait as wait_step
from imagebak.cli import cli
from imagebak.emulator.admin import admin_call
from imagebak.emulator.fixture import project_id
from imagebak.emulator.rules import Latency, rules_for
from imagebak.engine.journal import Journal
from imagebak.state import StateStore
from imagebak.state.history import HistoryLog

POLICY_QUOTA = 20  # policies per account and region (the products' default quota)
CLOUD_POLL_SECONDS = 15.0  # imagebak's poll interval against a real cloud (commands/run_cmd.py)


@dataclass(frozen=True)
class VendorSetup:
    vendor: str
    account: str
    key_id: str
    secret: str
    regions: list[str] | dict[str, str]
    source: str
    copy_to: list[Any]  # destinations in order; a run uses the first ``copy_regions`` of them
    status_actions: tuple[str, ...]  # the calls that report image/copy status
    short: str  # policy name prefix


# Regions as in examples/emulated-cloud.yaml.
VENDORS: dict[str, VendorSetup] = {
    "aliyun": VendorSetup(
        "aliyun",
        "aliyun-bench",
        "bench-ali-key",
        "bench-ali-secret",
        ["cn-shanghai", "cn-qingdao", "cn-beijing", "cn-hangzhou"],
        "cn-shanghai",
        ["cn-qingdao", "cn-beijing"],
        ("DescribeImages",),
        "ali",
    ),
    "huawei": VendorSetup(
        "huawei",
        "huawei-bench",
        "bench-hw-key",
        "bench-hw-secret",
        {
            "cn-north-4": "d1dcec53212a8d9bc17a9262453bf491",
            "cn-east-3": "ad0c9bb6e9526a69d97e967b6c18d982",
            "cn-south-1": "67ec326a42343354f22d2882d1a89b37",
            "cn-north-1": "83c8cb28eb4ed2e3895e8b6b263cfa5e",
            "cn-east-2": "53b97377b34e8ece7e9ee51d9212824c",
            "ap-southeast-1": "ccb1c51d0eba0ea84770a08716e6fec3",
        },
        "cn-north-4",
        [{"region": "cn-east-3", "vault": "vault-e3"}, {"region": "cn-south-1", "vault": "vault-s1"}],
        ("ShowJobProgress", "ShowJob", "ListImages"),
        "hw",
    ),
    "jdcloud": VendorSetup(
        "jdcloud",
        "jdcloud-bench",
        "bench-jd-key",
        "bench-jd-secret",
        ["cn-north-1", "cn-east-2", "cn-south-1"],
        "cn-north-1",
        ["cn-east-2", "cn-south-1"],
        ("describeImages",),
        "jd",
    ),
}
# Every instance: a cloud system disk and one cloud data disk; ``disks: all`` images both.
INSTANCE_DISKS: tuple[dict[str, Any], ...] = (
    {"device": "vda", "is_system": True, "size_gb": 40},
    {"device": "vdb", "size_gb": 100},
)
IMAGE_SIZE_GB = sum(int(d["size_gb"]) for d in INSTANCE_DISKS)  # what an image and its copy weigh
LATENCIES: dict[str, dict[str, dict[str, float]]] = {  # examples/emulated-cloud.yaml: image ~9 min, copy ~17
    "default": {
        "snapshot": {"base_seconds": 120, "per_gb_seconds": 1.0, "jitter": 0.2},
        "image": {"base_seconds": 300, "per_gb_seconds": 2.0, "jitter": 0.2},
        "copy": {"base_seconds": 600, "per_gb_seconds": 3.0, "jitter": 0.2},
    }
}


# ------------------------------------------------------------------ the latency model


def latency_of(latencies: Mapping[str, Mapping[str, Mapping[str, float]]], vendor: str, op: str) -> Latency:
    """The distribution the emulator will draw from, looked up as ``CloudModel._duration`` does.

    Vendor-specific fixture entry first, then the fixture's ``default``, then the vendor's built-in rules.
    """
    spec = latencies.get(vendor, {}).get(op) or latencies.get("default", {}).get(op)
    return Latency(**spec) if spec else rules_for(vendor).latency[op]


def slowest_seconds(
    latencies: Mapping[str, Mapping[str, Mapping[str, float]]], vendor: str, op: str, size_gb: int
) -> float:
    """The longest simulated duration the model can draw for ``op`` on ``size_gb``: nominal x (1 + jitter)."""
    lat = latency_of(latencies, vendor, op)
    return (lat.base_seconds + lat.per_gb_seconds * size_gb) * (1 + lat.jitter)


# ------------------------------------------------------------------ fixture and policy file


def split_evenly(total: int, vendors: Sequence[str]) -> dict[str, int]:
    """``total`` instances over ``vendors``, the first ones taking the remainder (100 -> 34/33/33)."""
    base, extra = divmod(total, len(vendors))
    return {v: base + (1 if i < extra else 0) for i, v in enumerate(vendors)}


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def instance_ids(vendor: str, count: int, rng: random.Random) -> list[str]:
    """Ids shaped like the vendor's (the adapters validate them)."""
    ids: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        if vendor == "aliyun":
            new = "i-uf6" + _alnum(rng, 17)
        elif vendor == "huawei":
            new = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        else:
            new = "i-" + _alnum(rng, 10)
        if new not in ids:
            ids.add(new)
            out.append(new)
    return out


def build_fixture(
    counts: Mapping[str, int],
    seed: int,
    *,
    existing: int = 0,
    latencies: Mapping[str, Any] = LATENCIES,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """An emulator fixture with ``counts[vendor]`` instances per vendor and quotas nobody reaches.

    ``existing`` older private images in every region stand for weeks of backups already there.
    """
    rng = random.Random(seed)
    accounts = []
    ids: dict[str, list[str]] = {}
    for name, count in counts.items():
        setup = VENDORS[name]
        ids[name] = instance_ids(name, count, rng)
        regions = list(setup.regions)
        accounts.append(
            {
                "name": setup.account,
                "provider": name,
                "access_key_id": setup.key_id,  # FAKE credentials: only the emulator knows them
                "secret": setup.secret,
                "regions": setup.regions,
                "quotas": {r: {"image": 1_000_000, "snapshot": 1_000_000} for r in regions},
                "instances": [
                    {
                        "instance_id": iid,
                        "name": f"bench-{n:04d}",
                        "region": setup.source,
                        "disks": list(INSTANCE_DISKS),
                    }
                    for n, iid in enumerate(ids[name])
                ],
                "images": [
                    {"region": region, "name": f"old-{name}-{region}-{k:05d}", "size_gb": IMAGE_SIZE_GB}
                    for region in regions
                    for k in range(existing)
                ],
            }
        )
    return {"seed": seed, "latencies": dict(latencies), "accounts": accounts}, ids


def fixture_account(fixture: Mapping[str, Any], vendor: str) -> Mapping[str, Any]:
    """The bench's ``vendor`` account in a fixture document of ``build_fixture``."""
    name = VENDORS[vendor].account
    return next(account for account in fixture["accounts"] if account["name"] == name)


def huawei_projects(account: Mapping[str, Any]) -> dict[str, str]:
    """Region -> project id of a Huawei fixture account, as the emulator reads them (``fixture.load_fixture``):
    the id the fixture gives, else the one it derives."""
    regions = account["regions"]
    given = regions if isinstance(regions, Mapping) else {}
    return {region: given.get(region) or project_id(account["name"], region) for region in regions}


def env_names(vendor: str) -> tuple[str, str]:
    return f"IMAGEBAK_BENCH_{vendor.upper()}_KEY_ID", f"IMAGEBAK_BENCH_{vendor.upper()}_SECRET"


def build_policies(
    endpoint: str,
    ids: Mapping[str, list[str]],
    policies_per_vendor: int,
    projects: Mapping[str, Mapping[str, str]],
    *,
    copy_regions: int = 2,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """A policy file: instances dealt round-robin over the vendor's policies, each in exactly one."""
    accounts: dict[str, Any] = {}
    policies: list[dict[str, Any]] = []
    for name, instances in ids.items():
        setup = VENDORS[name]
        id_env, secret_env = env_names(name)
        account: dict[str, Any] = {
            "provider": name,
            "endpoint": endpoint,
            "access_key_id_env": id_env,
            "secret_env": secret_env,
        }
        if name == "huawei":
            account["projects"] = dict(projects[name])
            account["agency"] = "imagebak-bench-agency"  # required for cross-region copies
        if concurrency:
            account["concurrency"] = concurrency
        accounts[setup.account] = account
        count = max(1, min(policies_per_vendor, POLICY_QUOTA, len(instances)))
        for p in range(count):
            policies.append(
                {
                    "name": f"{setup.short}-{p:02d}",
                    "account": setup.account,
                    "region": setup.source,
                    "start": "2026-01-01T02:00:00+08:00",
                    "every": "1d",
                    "disks": "all",
                    "instances": instances[p::count],
                    "copy_to": setup.copy_to[:copy_regions],
                    **({"vault": "vault-bench"} if setup.vendor == "huawei" else {}),  # whole images' CBR vault
                }
            )
    return {
        "version": 1,
        "state": "state.json",
        "log": "execution.log",
        "retry": {"attempts": 6, "initial_wait": 0.05, "max_wait": 0.5, "deadline": 30},
        "accounts": accounts,
        "policies": policies,
    }


# ------------------------------------------------------------------ the emulator, in a process of its own

START_SECONDS = 60.0  # to read a large fixture and listen
STOP_SECONDS = 10.0  # from SIGTERM to exit, before SIGKILL
_LISTENING = re.compile(r"listening on http://(127\.0\.0\.1:\d+)")
# Started and not yet stopped: the watchdog ends the process with os._exit, which runs no ``finally``.
_RUNNING: set[subprocess.Popen[str]] = set()


@dataclass(frozen=True)
class EmulatorCounters:
    """One ``GET /_emulator/counters``: totals since the emulator started, to be subtracted around a run."""

    calls: dict[str, dict[str, int]]  # vendor -> action -> calls
    cpu_by_action: dict[str, dict[str, float]]  # vendor -> action -> CPU seconds of the request threads
    process_cpu: float  # CPU seconds of the whole emulator process


class EmulatorProcess:
    """A running ``imagebak emulator serve``: its endpoint, and the admin API calls the benchmarks make."""

    def __init__(self, proc: subprocess.Popen[str], host_port: str) -> None:
        self.proc = proc
        self.host_port = host_port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host_port}"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """One call of ``/_emulator/PATH``; raises on an answer other than 200."""
        host, port = self.host_port.rsplit(":", 1)
        return admin_call(host, int(port), method, path, body, timeout=120)

    def counters(self) -> EmulatorCounters:
        body = self.admin("GET", "counters")
        return EmulatorCounters(body["counters"], body["cpu_seconds"], body["process_cpu_seconds"])

    def now(self) -> datetime:
        """The emulator's simulated time."""
        return datetime.fromisoformat(self.admin("GET", "clock")["now"])

    def advance_clock(self, seconds: float) -> None:
        """Move the simulated time ahead (it runs on from there at the time scale): a client skips a sleep."""
        self.admin("POST", "clock/advance", {"seconds": seconds})

    def dynamic_state(self) -> dict[str, Any]:
        """The model as a state file holds it (``CloudModel.to_dict``)."""
        data: dict[str, Any] = self.admin("GET", "dynamic-state")
        return data

    def load_dynamic_state(self, data: Mapping[str, Any]) -> None:
        """Replace images, snapshots and tasks with ``data``'s, as loading a state file does."""
        self.admin("POST", "dynamic-state", data)

    def wait_healthy(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.admin("GET", "health").get("ok"):
                    return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
            time.sleep(0.05)


def _listening(proc: subprocess.Popen[str], timeout: float = START_SECONDS) -> str:
    """The host:port of the emulator's first line ("imagebak emulator listening on http://127.0.0.1:PORT ...")."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
        line = proc.stdout.readline()
        if not line:  # it exited (a bad fixture: its error is on stderr, which is ours)
            break
        match = _LISTENING.search(line)
        if match:
            return match.group(1)
        seen.append(line)
    raise RuntimeError(f"the emulator did not start (its stderr is above); its stdout: {''.join(seen)[-500:]!r}")


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the emulator stops serving and exits), SIGKILL if it has not within ``STOP_SECONDS``.

    ``communicate`` drains its stdout, so that its last line cannot block it on a full pipe.
    """
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    _RUNNING.discard(proc)


def stop_emulators() -> None:
    """Stop every emulator still running (the watchdog, before it ends the process)."""
    for proc in list(_RUNNING):
        _stop(proc)


@contextlib.contextmanager
def emulator_process(fixture: Path, *, time_scale: float, cwd: Path) -> Iterator[EmulatorProcess]:
    """``python -m imagebak emulator serve`` on ``fixture`` and a free port, stopped however the block ends.

    It imports the imagebak of this checkout, as the bench does (``PYTHONPATH``); no state file.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "imagebak", "emulator", "serve", "--fixture", str(fixture)]
    command += ["--time-scale", repr(float(time_scale)), "--port", "0"]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    _RUNNING.add(proc)
    try:
        emu = EmulatorProcess(proc, _listening(proc))
        emu.wait_healthy()
        yield emu
    finally:
        _stop(proc)


@dataclass
class World:
    """A running emulator, its instances and a policy file (in ``folder``) that covers all of them."""

    emu: EmulatorProcess
    ids: dict[str, list[str]]
    folder: Path
    config: Path
    time_scale: float
    copy_regions: int
    fixture: dict[str, Any]  # the document the emulator was started on

    @property
    def instances(self) -> int:
        return sum(len(v) for v in self.ids.values())

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def credentials(self, vendor: str) -> tuple[str, str]:
        """The fake access key id and secret of the bench's ``vendor`` account."""
        account = fixture_account(self.fixture, vendor)
        return account["access_key_id"], account["secret"]


@contextlib.contextmanager
def world(
    counts: Mapping[str, int],
    folder: Path,
    *,
    seed: int,
    time_scale: float,
    latencies: Mapping[str, Any] = LATENCIES,
    copy_regions: int = 2,
    policies_per_vendor: int = 10,
    existing: int = 0,
    concurrency: int | None = None,
) -> Iterator[World]:
    """Start the emulator in its own process (no state file) on a synthetic fixture, written to ``folder``,
    and write the policy file for it."""
    fixture, ids = build_fixture(counts, seed, existing=existing, latencies=latencies)
    fixture_path = folder / "fixture.yaml"
    fixture_path.write_text(yaml.safe_dump(fixture), encoding="utf-8")
    with emulator_process(fixture_path, time_scale=time_scale, cwd=folder) as emu:
        projects = {v: huawei_projects(fixture_account(fixture, v)) for v in ids if v == "huawei"}
        document = build_policies(
            emu.endpoint, ids, policies_per_vendor, projects, copy_regions=copy_regions, concurrency=concurrency
        )
        config = folder / "policies.yaml"
        config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        w = World(emu, ids, folder, config, time_scale, copy_regions, fixture)
        for vendor in ids:
            id_env, secret_env = env_names(vendor)
            os.environ[id_env], os.environ[secret_env] = w.credentials(vendor)
        yield w


# ------------------------------------------------------------------ instrumentation (imagebak, in this process)


@dataclass
class Probe:
    """What the wrapped product functions saw during one run, and the emulator's CPU during it.

    Nothing in ``imagebak/`` is changed.
    """

    writes: int = 0  # state file rewrites (compactions, selection)
    write_seconds: float = 0.0
    bytes_written: int = 0  # state file bytes written
    max_state_bytes: int = 0
    reads: int = 0
    read_seconds: float = 0.0
    locked_seconds: float = 0.0
    wal_appends: int = 0  # journal lines appended (fsync'ed before a cloud call; a cloud's answer with the next)
    wal_bytes: int = 0  # journal bytes appended (one JSON line per save)
    history_appends: int = 0  # appends to the state's history log (summaries, points, tombstones)
    history_rewrites: int = 0  # its compactions (and its creation)
    history_bytes: int = 0  # bytes of both
    poll_passes: int = 0
    refs_polled: Counter[str] = field(default_factory=Counter)  # vendor -> refs asked for
    poll_seconds: float = 0.0
    emulator_cpu: float = 0.0  # CPU seconds of the emulator's process during the run (read after it)
    # (vendor, action) -> CPU seconds of the emulator's request threads serving those calls (HTTP + model)
    emulator_cpu_by_action: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def journal_bytes(self) -> int:
        """Everything the journal put on disk: log appends, state file rewrites, history log writes."""
        return self.wal_bytes + self.bytes_written + self.history_bytes

    def add(self, **amounts: float) -> None:
        """Add to counters from any thread (imagebak's lanes)."""
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@contextlib.contextmanager
def _clocked(add: Callable[[float], None]) -> Iterator[None]:
    """Hand the wall seconds the block took to ``add``, even if it raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(time.perf_counter() - start)


@contextlib.contextmanager
def instrumented(probe: Probe, vendor_of: Mapping[str, str]) -> Iterator[None]:
    """Wrap the state store (and its history log), the journal and the batched poll; restore after.

    Status calls are counted afterwards by action (``VendorSetup.status_actions``); the poll wrapper
    counts the refs asked for. ``vendor_of`` maps account names to vendors.
    """
    originals: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, wrapper: Any) -> None:
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, wrapper)

    original_write, original_read, original_locked = StateStore._write, StateStore.read, StateStore._locked
    original_append, original_put = Journal._append, HistoryLog._put
    original_poll = wait_step.poll

    def write(self: StateStore, data: dict[str, Any]) -> None:
        with _clocked(lambda s: probe.add(writes=1, write_seconds=s)):
            original_write(self, data)
        size = self.path.stat().st_size
        with probe.lock:
            probe.bytes_written += size
            probe.max_state_bytes = max(probe.max_state_bytes, size)

    def read(self: StateStore) -> Any:
        with _clocked(lambda s: probe.add(reads=1, read_seconds=s)):
            return original_read(self)

    @contextlib.contextmanager
    def locked(self: StateStore) -> Iterator[None]:
        with original_locked(self), _clocked(lambda s: probe.add(locked_seconds=s)):
            yield

    def append(self: Journal, build: Callable[[], dict[str, Any]]) -> None:
        sizes: list[int] = []

        def measured() -> dict[str, Any]:
            entry = build()
            sizes.append(len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) + 1)
            return entry

        original_append(self, measured)
        if sizes:
            probe.add(wal_appends=1, wal_bytes=sizes[0])  # what the journal writes: one line per save

    def put(self: HistoryLog, payload: bytes, *, append: bool) -> None:
        original_put(self, payload, append=append)
        probe.add(history_bytes=len(payload), **{"history_appends" if append else "history_rewrites": 1})

    def poll(ctx: Any, pending: Sequence[Any]) -> None:
        # Polls of different accounts run at once, so the calls are told apart by action (status_actions),
        # not by counting around this function.
        refs = Counter(vendor_of[execution.policy.account] for execution, _work, artifact in pending if artifact.ref)
        try:
            with _clocked(lambda s: probe.add(poll_passes=1, poll_seconds=s)):
                original_poll(ctx, pending)
        finally:
            with probe.lock:
                probe.refs_polled.update(refs)

    patch(StateStore, "_write", write)
    patch(StateStore, "read", read)
    patch(StateStore, "_locked", locked)
    patch(Journal, "_append", append)
    patch(HistoryLog, "_put", put)
    patch(wait_step, "poll", poll)
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


@dataclass
class RunResult:
    """One ``imagebak run``: its report, timing, the API calls it made and what the probe saw."""

    exit_code: int
    report: dict[str, Any] | None  # the --format json report; None if it printed none
    error: str | None  # an exception or missing report, in one line
    started_at: float  # time.time() when the run began (the execution log's clock)
    wall: float  # seconds of the run call itself
    cpu: float  # CPU seconds of the run: this process's (imagebak, the SDKs) plus the emulator process's
    calls: dict[str, dict[str, int]]  # vendor -> action -> calls made during this run
    probe: Probe

    @property
    def statuses(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for execution in (self.report or {}).get("executions", []):
            found.update(work["status"] for work in execution["instances"].values())
        return found


def diff_counts(after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]) -> dict:
    """Per vendor and action, calls made between two ``EmulatorCounters.calls``."""
    out: dict[str, dict[str, int]] = {}
    for vendor, actions in after.items():
        delta = {a: n - before.get(vendor, {}).get(a, 0) for a, n in actions.items()}
        out[vendor] = {a: n for a, n in delta.items() if n}
    return out


def run_imagebak(
    w: World, *, poll_interval: float, deadline: float, extra: Sequence[str] = (), probe: Probe | None = None
) -> RunResult:
    """``imagebak -c policies.yaml run --all ... --format json`` in this process, instrumented.

    Pass a ``probe`` to watch the figures while the run is still going (a watchdog does).
    """
    probe = probe or Probe()
    vendor_of = {VENDORS[v].account: v for v in w.ids}
    before = w.emu.counters()
    args = ["-c", str(w.config), "run", "--all", "--poll-interval", f"{poll_interval:g}"]
    args += ["--deadline", f"{deadline:g}", "--format", "json", *extra]
    cpu_start, start, started_at = time.process_time(), time.perf_counter(), time.time()
    with instrumented(probe, vendor_of):
        result = CliRunner().invoke(cli, args)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = w.emu.counters()
    calls = diff_counts(after.calls, before.calls)
    probe.emulator_cpu = after.process_cpu - before.process_cpu
    for vendor, actions in after.cpu_by_action.items():
        for action, seconds in actions.items():
            spent = seconds - before.cpu_by_action.get(vendor, {}).get(action, 0.0)
            if spent > 0:
                probe.emulator_cpu_by_action[(vendor, action)] = spent
    cpu += probe.emulator_cpu
    report: dict[str, Any] | None = None
    error: str | None = None
    if result.exception and not isinstance(result.exception, SystemExit):
        error = f"imagebak run raised {type(result.exception).__name__}: {result.exception}"
    else:
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            report = None
        if not isinstance(report, dict):
            report, error = None, f"no JSON report (exit {result.exit_code}): {result.output[-300:]!r}"
    return RunResult(result.exit_code, report, error, started_at, wall, cpu, calls, probe)


def vendor_figures(ids: Mapping[str, list[str]], run: RunResult) -> dict[str, dict[str, Any]]:
    """Per vendor: calls per instance, status calls (the vendor's status actions) and how well they batch."""
    out: dict[str, dict[str, Any]] = {}
    for vendor, instances in ids.items():
        n = len(instances)
        actions = run.calls.get(vendor, {})
        calls = sum(actions.values())
        status = sum(actions.get(action, 0) for action in VENDORS[vendor].status_actions)
        refs = run.probe.refs_polled[vendor]
        out[vendor] = {
            "instances": n,
            "calls": calls,
            "calls_per_instance": calls / n,
            "by_action": dict(sorted(actions.items(), key=lambda kv: -kv[1])),
            "status_calls": status,
            "status_calls_per_instance": status / n,
            "other_calls_per_instance": (calls - status) / n,
            "refs_polled": refs,
            "status_calls_per_100_refs": 100 * status / refs if refs else None,
        }
    return out


# ------------------------------------------------------------------ bounds and reporting helpers


class Watchdog:
    """Ends the process if a benchmark overruns its own bound, after printing what ``report`` returns.

    A benchmark must stop by itself even when the product hangs; ``report`` runs on the timer
    thread and writes to the real stdout (CliRunner may have replaced ``sys.stdout``). The emulators
    still running are stopped before the process ends (``os._exit`` runs no ``finally``).
    """

    def __init__(self, seconds: float, report: Callable[[float], str], cleanup: Callable[[], None] | None = None):
        self.seconds, self.report, self.cleanup = seconds, report, cleanup
        self.started = time.perf_counter()
        self.fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def wait_if_fired(self) -> None:
        """Called by the main thread after a run: if the watchdog is reporting, leave the exit to it."""
        if self.fired.is_set():
            threading.Event().wait()

    def _fire(self) -> None:
        self.fired.set()
        os.write(1, (self.report(time.perf_counter() - self.started) + "\n").encode())
        stop_emulators()
        if self.cleanup is not None:
            self.cleanup()
        os._exit(3)


@dataclass
class Target:
    """A figure against its limit; benchmarks print MET/MISSED, they never assert."""

    name: str
    measured: float
    limit: float
    unit: str
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "measured": round(self.measured, 3), "limit": self.limit, "unit": self.unit}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "-C", str(CHECKOUT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(CHECKOUT), "status", "--porcelain", "--", "imagebak"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "imagebak": str(Path(imagebak.__file__).parent),
        "commit": commit + (" (imagebak/ modified)" if dirty else ""),
    }
