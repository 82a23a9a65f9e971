"""Scale benchmark of ``imagebak run``: N instances per vendor, create -> wait -> copy to two regions.

Builds a synthetic emulator fixture in memory (every instance has a cloud vda + vdb, quotas raised so
nothing is quota-limited), starts the emulator on 127.0.0.1 with a large time scale and no state file,
writes a temporary policies.yaml (policies spread so that each account+region stays within the
20-policy quota, every instance in exactly one policy, copy_to two regions) and runs

    imagebak run --all --poll-interval 0.05 --format json

in this process through Click's CliRunner. It prints wall time, throughput, cloud API calls (from the
emulator's counters), how well status polling is batched, the journal's cost (state writes counted
by wrapping ``StateStore._write`` here, not in the product), peak RSS, and a targets section
(bench/README.md explains the targets).

    /tmp/venv/bin/python bench/run_scale.py                      # 3 x 100 instances
    /tmp/venv/bin/python bench/run_scale.py --instances-per-vendor 30 --time-scale 5000

Bounded: ``--deadline`` is passed to ``imagebak run`` and a watchdog ends the process shortly after
it; only loopback traffic; fake credentials from the in-memory fixture only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import string
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from imagebak.actions import wait as wait_step
from imagebak.cli import cli
from imagebak.emulator import server as emulator_server
from imagebak.emulator.faults import Counters
from imagebak.state import StateStore

GRACE_SECONDS = 30.0  # the watchdog fires this long after --deadline
POLICY_QUOTA = 20  # policies per account and region (the products' default quota)


@dataclass(frozen=True)
class VendorSetup:
    vendor: str
    account: str
    key_id: str
    secret: str
    regions: list[str] | dict[str, str]
    source: str
    copy_to: list[Any]
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
        ("ShowJob", "ListImages"),
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
LATENCIES = {  # as in examples/emulated-cloud.yaml: a 40+100 GB image ~9 min, its copy ~17 min (simulated)
    "default": {
        "snapshot": {"base_seconds": 120, "per_gb_seconds": 1.0, "jitter": 0.2},
        "image": {"base_seconds": 300, "per_gb_seconds": 2.0, "jitter": 0.2},
        "copy": {"base_seconds": 600, "per_gb_seconds": 3.0, "jitter": 0.2},
    }
}


# ------------------------------------------------------------------ fixture and policy file


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def instance_ids(vendor: str, count: int, rng: random.Random) -> list[str]:
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
    vendors: Sequence[str], per_vendor: int, seed: int, existing: int = 0
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    rng = random.Random(seed)
    accounts = []
    ids: dict[str, list[str]] = {}
    for name in vendors:
        setup = VENDORS[name]
        ids[name] = instance_ids(name, per_vendor, rng)
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
                        "disks": [
                            {"device": "vda", "is_system": True, "size_gb": 40},
                            {"device": "vdb", "size_gb": 100},
                        ],
                    }
                    for n, iid in enumerate(ids[name])
                ],
                "images": [  # older backups already in every region, as after weeks of nightly runs
                    {"region": region, "name": f"old-{name}-{region}-{k:05d}", "size_gb": 140}
                    for region in regions
                    for k in range(existing)
                ],
            }
        )
    return {"seed": seed, "latencies": LATENCIES, "accounts": accounts}, ids


def env_names(vendor: str) -> tuple[str, str]:
    return f"IMAGEBAK_BENCH_{vendor.upper()}_KEY_ID", f"IMAGEBAK_BENCH_{vendor.upper()}_SECRET"


def build_policies(
    endpoint: str, ids: dict[str, list[str]], policies_per_vendor: int, projects: dict[str, dict[str, str]]
) -> dict[str, Any]:
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
            account["projects"] = projects[name]
            account["agency"] = "imagebak-bench-agency"  # required for cross-region copies
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
                    "instances": instances[p::count],  # every instance in exactly one policy
                    "copy_to": setup.copy_to,
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


# ------------------------------------------------------------------ instrumentation (this process only)


@dataclass
class Probe:
    writes: int = 0
    write_seconds: float = 0.0
    bytes_written: int = 0
    max_state_bytes: int = 0
    reads: int = 0
    read_seconds: float = 0.0
    locked_seconds: float = 0.0
    poll_passes: int = 0
    refs_polled: Counter[str] = field(default_factory=Counter)  # account -> refs asked for
    poll_calls: Counter[str] = field(default_factory=Counter)  # vendor -> API calls made while polling
    poll_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def instrumented(probe: Probe, counters: Counters) -> Iterator[None]:
    """Wrap StateStore._write/read/_locked and the batched poll, restoring them afterwards.

    The engine polls from its main loop while no other thread calls the cloud, so the emulator's
    counters before and after one poll give exactly the status calls that poll made.
    """
    original_write = StateStore._write
    original_read = StateStore.read
    original_locked = StateStore._locked
    original_poll = wait_step.poll

    def write(self: StateStore, data: dict[str, Any]) -> None:
        start = time.perf_counter()
        original_write(self, data)
        size = self.path.stat().st_size
        with probe.lock:
            probe.writes += 1
            probe.write_seconds += time.perf_counter() - start
            probe.bytes_written += size
            probe.max_state_bytes = max(probe.max_state_bytes, size)

    def read(self: StateStore) -> Any:
        start = time.perf_counter()
        try:
            return original_read(self)
        finally:
            with probe.lock:
                probe.reads += 1
                probe.read_seconds += time.perf_counter() - start

    @contextlib.contextmanager
    def locked(self: StateStore) -> Iterator[None]:
        with original_locked(self):
            start = time.perf_counter()
            try:
                yield
            finally:
                with probe.lock:
                    probe.locked_seconds += time.perf_counter() - start

    def poll(ctx: Any, pending: Sequence[Any]) -> None:
        with probe.lock:
            probe.poll_passes += 1
            for execution, _work, artifact in pending:
                if artifact.ref:
                    probe.refs_polled[execution.policy.account] += 1
        before = counters.snapshot()
        start = time.perf_counter()
        try:
            original_poll(ctx, pending)
        finally:
            after = counters.snapshot()
            with probe.lock:
                probe.poll_seconds += time.perf_counter() - start
                for vendor, actions in after.items():
                    probe.poll_calls[vendor] += sum(actions.values()) - sum(before.get(vendor, {}).values())

    StateStore._write = write  # type: ignore[method-assign]
    StateStore.read = read  # type: ignore[method-assign]
    StateStore._locked = locked  # type: ignore[method-assign,assignment]
    wait_step.poll = poll
    try:
        yield
    finally:
        StateStore._write = original_write  # type: ignore[method-assign]
        StateStore.read = original_read  # type: ignore[method-assign]
        StateStore._locked = original_locked  # type: ignore[method-assign]
        wait_step.poll = original_poll


class Watchdog:
    """Ends the process if ``imagebak run`` overruns its own --deadline by GRACE_SECONDS.

    The engine checks --deadline only between passes, and one pass can be long, so the bench needs
    its own bound. Before exiting it prints what it measured so far (to the real stdout: CliRunner
    has replaced sys.stdout) and, unless --keep, removes the temporary folder.
    """

    def __init__(self, seconds: float, folder: Path, keep: bool) -> None:
        self.seconds, self.folder, self.keep = seconds, folder, keep
        self.started = time.perf_counter()
        self.probe: Probe | None = None
        self.counters: Counters | None = None
        self.instances = 0
        self.fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired.set()
        lines = [
            f"run_scale: WATCHDOG: imagebak run still busy {self.seconds:.0f} s after start, "
            f"{self.seconds - GRACE_SECONDS:.0f} s past its --deadline; exiting with partial figures"
        ]
        elapsed = time.perf_counter() - self.started
        statuses = _statuses_in_state(self.folder / "state.json")
        lines.append(
            f"  elapsed             {elapsed:.1f} s; instance statuses in the state file: {dict(statuses)} "
            f"of {self.instances}"
        )
        if self.counters is not None:
            for vendor, actions in self.counters.snapshot().items():
                lines.append(f"  {vendor:<8} {sum(actions.values()):>6} API calls: {actions}")
        if self.probe is not None:
            p = self.probe
            lines.append(
                f"  state writes {p.writes} ({p.bytes_written / 2**20:.1f} MiB, largest file "
                f"{p.max_state_bytes:,} bytes), {p.write_seconds:.1f} s writing, {p.read_seconds:.1f} s "
                f"reading, lock held {p.locked_seconds:.1f} s; {p.poll_passes} poll passes"
            )
        lines.append(f"  peak RSS {peak_rss_mib():.0f} MiB")
        done = statuses.get("done", 0)
        lines.append("targets (bench/README.md says why)")
        lines.append(
            f"  {'MET ' if done >= self.instances else 'MISS'}  instances done by the deadline"
            f"{'':<13} {done:>6} >= {self.instances}"
        )
        lines.append(
            f"  MISS  wall time for {self.instances} instances{'':<18} >{elapsed:5.0f} <= "
            f"{max(10.0, self.instances / 10):g} s (not finished)"
        )
        os.write(1, ("\n".join(lines) + "\n").encode())
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)
        os._exit(3)


def _statuses_in_state(path: Path) -> Counter[str]:
    """Instance statuses of in-flight executions and of the last finished ones (the file is replaced atomically)."""
    found: Counter[str] = Counter()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return found
    for entry in data.get("policies", {}).values():
        for execution in entry.get("executions", {}).values():
            found.update(w.get("status", "?") for w in execution.get("instances", {}).values())
        for summary in entry.get("history", [])[-1:]:
            found.update(w.get("status", "?") for w in summary.get("instances", {}).values())
    return found


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ------------------------------------------------------------------ the run


@dataclass
class Target:
    name: str
    measured: float
    limit: float
    unit: str
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances-per-vendor", type=int, default=100, help="default: 100")
    parser.add_argument(
        "--policies-per-vendor",
        type=int,
        default=10,
        help=f"policies per vendor, at most {POLICY_QUOTA} (the per-region quota); default: 10",
    )
    parser.add_argument("--vendors", nargs="+", choices=sorted(VENDORS), default=sorted(VENDORS))
    parser.add_argument(
        "--time-scale",
        type=float,
        default=20000.0,
        help="emulated seconds per real second (default: 20000: a 17-minute copy takes 0.05 s)",
    )
    parser.add_argument("--poll-interval", type=float, default=0.05, help="imagebak run --poll-interval")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="accounts.*.concurrency (instances submitted at once per account); default: vendor's",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=45.0,
        help="imagebak run --deadline, in seconds; a watchdog exits 30 s later with partial figures (default: 45)",
    )
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="set TCP_NODELAY on the emulator's connections in this process (its HTTP server "
        "otherwise costs ~40 ms per Aliyun/Huawei call: Nagle + delayed ACK); isolates "
        "imagebak's own overhead from that artifact",
    )
    parser.add_argument(
        "--existing-images",
        type=int,
        default=0,
        metavar="N",
        help="N available private images already in every region of every account (older "
        "backups); shows calls that grow with the images in a region (default: 0)",
    )
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (state, log, policies)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.instances_per_vendor < 1:
        parser.error("--instances-per-vendor must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="imagebak-bench-"))
    try:
        with Watchdog(args.deadline + GRACE_SECONDS, folder, args.keep) as dog:
            return _bench(args, folder, dog)
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _bench(args: argparse.Namespace, folder: Path, dog: Watchdog) -> int:
    fixture, ids = build_fixture(args.vendors, args.instances_per_vendor, args.seed, args.existing_images)
    dog.instances = sum(len(v) for v in ids.values())
    if args.tcp_nodelay:  # bench-process only: the emulator's handler class, not the product's code
        emulator_server._Handler.disable_nagle_algorithm = True
    setup_start = time.perf_counter()
    with emulator_server.start_emulator(fixture, time_scale=args.time_scale) as emu:  # no state file
        projects = {v: dict(emu.model.account(VENDORS[v].account).projects) for v in ids if v == "huawei"}
        document = build_policies(emu.endpoint, ids, args.policies_per_vendor, projects)
        if args.concurrency:
            for account in document["accounts"].values():
                account["concurrency"] = args.concurrency
        config = folder / "policies.yaml"
        config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        for vendor in ids:
            acc = emu.model.account(VENDORS[vendor].account)
            id_env, secret_env = env_names(vendor)
            os.environ[id_env], os.environ[secret_env] = acc.access_key_id, acc.secret
        setup_seconds = time.perf_counter() - setup_start

        probe = Probe()
        dog.probe, dog.counters = probe, emu.counters
        cpu_start = time.process_time()
        start = time.perf_counter()
        with instrumented(probe, emu.counters):
            result = CliRunner().invoke(
                cli,
                [
                    "-c",
                    str(config),
                    "run",
                    "--all",
                    "--poll-interval",
                    str(args.poll_interval),
                    "--deadline",
                    str(args.deadline),
                    "--format",
                    "json",
                ],
            )
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        if dog.fired.is_set():  # the watchdog is reporting and removing the folder: leave the exit to it
            threading.Event().wait()
        counters = emu.counters.snapshot()

    if result.exception and not isinstance(result.exception, SystemExit):
        print(f"run_scale: imagebak run raised {type(result.exception).__name__}: {result.exception}", file=sys.stderr)
        return 2
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"run_scale: no JSON report (exit {result.exit_code}):\n{result.output[-2000:]}", file=sys.stderr)
        return 2
    figures = _figures(
        args, ids, report, result.exit_code, counters, probe, folder, setup_seconds=setup_seconds, wall=wall, cpu=cpu
    )
    _print(figures)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


def _figures(
    args: argparse.Namespace,
    ids: dict[str, list[str]],
    report: dict[str, Any],
    exit_code: int,
    counters: dict[str, dict[str, int]],
    probe: Probe,
    folder: Path,
    *,
    setup_seconds: float,
    wall: float,
    cpu: float,
) -> dict[str, Any]:
    total = sum(len(v) for v in ids.values())
    statuses: Counter[str] = Counter()
    copies: Counter[str] = Counter()
    for execution in report["executions"]:
        for work in execution["instances"].values():
            statuses[work["status"]] += 1
            for copy in work["copies"].values():
                copies[copy["state"]] += 1
    state_path, log_path = folder / "state.json", folder / "execution.log"
    vendors: dict[str, Any] = {}
    for vendor, instances in ids.items():
        actions = counters.get(vendor, {})
        calls = sum(actions.values())
        refs = probe.refs_polled[VENDORS[vendor].account]
        poll_calls = probe.poll_calls[vendor]
        vendors[vendor] = {
            "instances": len(instances),
            "calls": calls,
            "calls_per_instance": round(calls / len(instances), 2),
            "by_action": dict(sorted(actions.items(), key=lambda kv: -kv[1])),
            "status_calls": poll_calls,
            "status_calls_per_instance": round(poll_calls / len(instances), 2),
            "other_calls_per_instance": round((calls - poll_calls) / len(instances), 2),
            "refs_polled": refs,
            "status_calls_per_ref_poll": round(poll_calls / refs, 3) if refs else None,
        }
    return {
        "instances": total,
        "per_vendor": {v: len(i) for v, i in ids.items()},
        "policies": len(report["executions"]),
        "time_scale": args.time_scale,
        "poll_interval": args.poll_interval,
        "deadline": args.deadline,
        "tcp_nodelay": args.tcp_nodelay,
        "existing_images": args.existing_images,
        "exit_code": exit_code,
        "result": report.get("result"),
        "deadline_hit": report.get("deadline_hit"),
        "statuses": dict(statuses),
        "copies": dict(copies),
        "done": statuses.get("done", 0),
        "setup_seconds": round(setup_seconds, 3),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "instances_done_per_second": round(statuses.get("done", 0) / wall, 2),
        "api_calls_total": sum(v["calls"] for v in vendors.values()),
        "vendors": vendors,
        "poll_passes": probe.poll_passes,
        "poll_seconds": round(probe.poll_seconds, 3),
        "state": {
            "final_bytes": state_path.stat().st_size if state_path.exists() else 0,
            "max_bytes": probe.max_state_bytes,
            "writes": probe.writes,
            "writes_per_instance": round(probe.writes / total, 2),
            "bytes_written": probe.bytes_written,
            "write_seconds": round(probe.write_seconds, 3),
            "reads": probe.reads,
            "read_seconds": round(probe.read_seconds, 3),
            "locked_seconds": round(probe.locked_seconds, 3),
            "locked_share_of_wall": round(probe.locked_seconds / wall, 3),
        },
        "log_bytes": log_path.stat().st_size if log_path.exists() else 0,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def _targets(f: dict[str, Any]) -> list[Target]:
    """The targets bench/README.md justifies; wall-time targets scale with the instance count."""
    n = f["instances"]
    vendors = f["vendors"]
    targets = [
        Target("instances done", f["done"], n, f"of {n}", higher_is_better=True),
        Target(f"wall time for {n} instances", f["wall_seconds"], max(10.0, n / 10), "s"),
        Target("throughput", f["instances_done_per_second"], 10.0, "instances/s", higher_is_better=True),
        Target(
            "API calls per instance (worst vendor)",
            max(v["calls_per_instance"] for v in vendors.values()),
            15.0,
            "calls",
        ),
        Target("state writes per instance", f["state"]["writes_per_instance"], 15.0, "writes"),
        Target("state lock held / wall", f["state"]["locked_share_of_wall"], 0.25, "share"),
        Target("largest state file per instance", f["state"]["max_bytes"] / 1024 / n, 4.0, "KiB"),
        Target("peak RSS", f["peak_rss_mib"], 256.0, "MiB"),
    ]
    for vendor, limit in (("aliyun", 0.25), ("jdcloud", 0.25), ("huawei", 1.0)):
        ratio = vendors.get(vendor, {}).get("status_calls_per_ref_poll")
        if ratio is not None:
            targets.append(Target(f"{vendor} status calls per ref polled", ratio, limit, "calls"))
    return targets


def _print(f: dict[str, Any]) -> None:
    n, wall = f["instances"], f["wall_seconds"]
    print(
        f"imagebak run --all: {n} instances ({', '.join(f'{v} {k}' for v, k in f['per_vendor'].items())}), "
        f"{f['policies']} policies, copy_to 2 regions, time scale x{f['time_scale']:g}, "
        f"poll every {f['poll_interval']:g} s, deadline {f['deadline']:g} s"
        + (", emulator TCP_NODELAY" if f["tcp_nodelay"] else "")
        + (f", {f['existing_images']} older images per region" if f["existing_images"] else "")
    )
    print(f"  result              {f['result']} (exit {f['exit_code']}), deadline hit: {f['deadline_hit']}")
    print(f"  instances           {f['statuses']}; copies {f['copies']}")
    print(f"  emulator setup      {f['setup_seconds']:.2f} s (not counted below)")
    print(f"  wall                {wall:.2f} s   (CPU {f['cpu_seconds']:.2f} s: imagebak + emulator, one process)")
    print(f"  throughput          {f['instances_done_per_second']:.2f} instances done/s")
    print(
        f"  poll passes         {f['poll_passes']} ({wall / max(1, f['poll_passes']):.2f} s per engine pass; "
        f"{f['poll_seconds']:.2f} s inside status polls)"
    )
    print()
    print("cloud API calls (emulator counters)")
    print(f"  total               {f['api_calls_total']}  ({f['api_calls_total'] / n:.1f} per instance)")
    for vendor, v in f["vendors"].items():
        detail = ", ".join(f"{a} {k}" for a, k in v["by_action"].items())
        print(f"  {vendor:<8} {v['calls']:>6} calls, {v['calls_per_instance']:5.1f}/instance: {detail}")
        ratio = v["status_calls_per_ref_poll"]
        print(
            f"  {'':<8} status polls: {v['status_calls']} calls for {v['refs_polled']} refs polled "
            f"= {ratio if ratio is not None else '-'} per ref ({v['status_calls_per_instance']:.1f}/instance); "
            f"other calls {v['other_calls_per_instance']:.1f}/instance"
        )
    st = f["state"]
    print()
    print("state journal (StateStore wrapped in this process)")
    print(f"  state file          {st['final_bytes']:,} bytes at the end, {st['max_bytes']:,} at most")
    print(
        f"  writes              {st['writes']} ({st['writes_per_instance']:.1f} per instance), "
        f"{st['bytes_written'] / 2**20:.1f} MiB written in all"
    )
    print(
        f"  time in writes      {st['write_seconds']:.2f} s (encode + write + fsync + rename); "
        f"reads {st['reads']} in {st['read_seconds']:.2f} s"
    )
    print(
        f"  state lock held     {st['locked_seconds']:.2f} s = {100 * st['locked_share_of_wall']:.0f}% of wall "
        "(every save is serialised)"
    )
    print(f"  execution log       {f['log_bytes']:,} bytes")
    print(f"peak RSS              {f['peak_rss_mib']:.0f} MiB (imagebak + emulator + SDKs, one process)")
    targets = _targets(f)
    print()
    print("targets (bench/README.md says why)")
    for t in targets:
        op = ">=" if t.higher_is_better else "<="
        print(f"  {'MET ' if t.met else 'MISS'}  {t.name:<40} {t.measured:10.3f}  {op} {t.limit:<8g} {t.unit}")
    f["targets"] = [
        {"name": t.name, "measured": round(t.measured, 3), "limit": t.limit, "unit": t.unit, "met": t.met}
        for t in targets
    ]


if __name__ == "__main__":
    sys.exit(main())
