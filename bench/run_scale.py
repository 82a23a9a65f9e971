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
from imagebak.emulator.server import start_emulator
from imagebak.state import StateStore

GRACE_SECONDS = 20.0  # the watchdog fires this long after --deadline
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


# Regions as in examples/emulated-cloud.yaml.
VENDORS: dict[str, VendorSetup] = {
    "aliyun": VendorSetup(
        "aliyun", "aliyun-bench", "bench-ali-key", "bench-ali-secret",
        ["cn-shanghai", "cn-qingdao", "cn-beijing", "cn-hangzhou"], "cn-shanghai",
        ["cn-qingdao", "cn-beijing"], ("DescribeImages",),
    ),
    "huawei": VendorSetup(
        "huawei", "huawei-bench", "bench-hw-key", "bench-hw-secret",
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
    ),
    "jdcloud": VendorSetup(
        "jdcloud", "jdcloud-bench", "bench-jd-key", "bench-jd-secret",
        ["cn-north-1", "cn-east-2", "cn-south-1"], "cn-north-1",
        ["cn-east-2", "cn-south-1"], ("describeImages",),
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


def build_fixture(vendors: Sequence[str], per_vendor: int, seed: int) -> tuple[dict[str, Any], dict[str, list[str]]]:
    rng = random.Random(seed)
    accounts = []
    ids: dict[str, list[str]] = {}
    for name in vendors:
        setup = VENDORS[name]
        ids[name] = instance_ids(name, per_vendor, rng)
        regions = list(setup.regions)
        accounts.append({
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
        })
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
        account: dict[str, Any] = {"provider": name, "endpoint": endpoint,
                                   "access_key_id_env": id_env, "secret_env": secret_env}
        if name == "huawei":
            account["projects"] = projects[name]
        accounts[setup.account] = account
        count = max(1, min(policies_per_vendor, POLICY_QUOTA, len(instances)))
        for p in range(count):
            policies.append({
                "name": f"bench-{name}-{p:02d}",
                "account": setup.account,
                "region": setup.source,
                "start": "2026-01-01T02:00:00+08:00",
                "every": "1d",
                "disks": "all",
                "instances": instances[p::count],  # every instance in exactly one policy
                "copy_to": setup.copy_to,
            })
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
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def instrumented(probe: Probe) -> Iterator[None]:
    """Wrap StateStore._write/read/_locked and the batched poll, restoring them afterwards."""
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
        original_poll(ctx, pending)

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


def watchdog(seconds: float) -> threading.Timer:
    def fire() -> None:
        print(f"run_scale: watchdog: still running {seconds:.0f} s after start; exiting", file=sys.stderr, flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


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
    parser.add_argument("--policies-per-vendor", type=int, default=10,
                        help=f"policies per vendor, at most {POLICY_QUOTA} (the per-region quota); default: 10")
    parser.add_argument("--vendors", nargs="+", choices=sorted(VENDORS), default=sorted(VENDORS))
    parser.add_argument("--time-scale", type=float, default=20000.0,
                        help="emulated seconds per real second (default: 20000: a 17-minute copy takes 0.05 s)")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="imagebak run --poll-interval")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="accounts.*.concurrency (instances submitted at once per account); default: vendor's")
    parser.add_argument("--deadline", type=float, default=100.0,
                        help="imagebak run --deadline, in seconds; a watchdog exits 20 s later (default: 100)")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (state, log, policies)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.instances_per_vendor < 1:
        parser.error("--instances-per-vendor must be at least 1")

    timer = watchdog(args.deadline + GRACE_SECONDS)
    folder = Path(tempfile.mkdtemp(prefix="imagebak-bench-"))
    try:
        return _bench(args, folder)
    finally:
        timer.cancel()
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _bench(args: argparse.Namespace, folder: Path) -> int:
    fixture, ids = build_fixture(args.vendors, args.instances_per_vendor, args.seed)
    total = sum(len(v) for v in ids.values())
    setup_start = time.perf_counter()
    with start_emulator(fixture, time_scale=args.time_scale) as emu:  # no state file
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
        cpu_start = time.process_time()
        start = time.perf_counter()
        with instrumented(probe):
            result = CliRunner().invoke(
                cli,
                ["-c", str(config), "run", "--all", "--poll-interval", str(args.poll_interval),
                 "--deadline", str(args.deadline), "--format", "json"],
            )
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        counters = emu.counters.snapshot()

    if result.exception and not isinstance(result.exception, SystemExit):
        print(f"run_scale: imagebak run raised {type(result.exception).__name__}: {result.exception}", file=sys.stderr)
        return 2
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"run_scale: no JSON report (exit {result.exit_code}):\n{result.output[-2000:]}", file=sys.stderr)
        return 2

    statuses: Counter[str] = Counter()
    copies: Counter[str] = Counter()
    for execution in report["executions"]:
        for work in execution["instances"].values():
            statuses[work["status"]] += 1
            for copy in work["copies"].values():
                copies[copy["state"]] += 1
    state_path = folder / "state.json"
    log_path = folder / "execution.log"
    state_bytes = state_path.stat().st_size if state_path.exists() else 0
    log_bytes = log_path.stat().st_size if log_path.exists() else 0
    rss = peak_rss_mib()

    figures: dict[str, Any] = {
        "instances": total, "vendors": list(ids), "policies": len(report["executions"]),
        "time_scale": args.time_scale, "poll_interval": args.poll_interval,
        "exit_code": result.exit_code, "result": report.get("result"), "deadline_hit": report.get("deadline_hit"),
        "statuses": dict(statuses), "copies": dict(copies),
        "setup_seconds": round(setup_seconds, 3), "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
        "instances_per_second": round(total / wall, 2),
        "api_calls": counters,
        "state": {
            "final_bytes": state_bytes, "max_bytes": probe.max_state_bytes, "writes": probe.writes,
            "writes_per_instance": round(probe.writes / total, 2), "bytes_written": probe.bytes_written,
            "write_seconds": round(probe.write_seconds, 3), "reads": probe.reads,
            "read_seconds": round(probe.read_seconds, 3), "locked_seconds": round(probe.locked_seconds, 3),
        },
        "poll_passes": probe.poll_passes,
        "log_bytes": log_bytes,
        "peak_rss_mib": round(rss, 1),
    }

    print(f"imagebak run --all: {total} instances ({', '.join(f'{v} {len(i)}' for v, i in ids.items())}), "
          f"{len(report['executions'])} policies, copy_to 2 regions, time scale x{args.time_scale:g}, "
          f"poll every {args.poll_interval:g} s")
    print(f"  result              {report.get('result')} (exit {result.exit_code}), deadline hit: "
          f"{report.get('deadline_hit')}")
    print(f"  instances           {dict(statuses)}; copies {dict(copies)}")
    print(f"  emulator setup      {setup_seconds:.2f} s (not counted below)")
    print(f"  wall                {wall:.2f} s   (CPU {cpu:.2f} s for imagebak + emulator, one process)")
    print(f"  throughput          {total / wall:.1f} instances/s")
    print()
    print("cloud API calls (emulator counters)")
    all_calls = sum(n for actions in counters.values() for n in actions.values())
    print(f"  total               {all_calls}  ({all_calls / total:.1f} per instance)")
    per_instance: dict[str, float] = {}
    status_ratio: dict[str, float] = {}
    for vendor, instances in ids.items():
        setup = VENDORS[vendor]
        actions = counters.get(vendor, {})
        calls = sum(actions.values())
        per_instance[vendor] = calls / len(instances)
        detail = ", ".join(f"{a} {n}" for a, n in sorted(actions.items(), key=lambda kv: -kv[1]))
        print(f"  {vendor:<8} {calls:>6} calls, {per_instance[vendor]:5.1f}/instance: {detail}")
        status_calls = sum(actions.get(a, 0) for a in setup.status_actions)
        refs = probe.refs_polled[setup.account]
        status_ratio[vendor] = status_calls / refs if refs else 0.0
        print(f"  {'':<8} status calls ({'+'.join(setup.status_actions)}) {status_calls} for {refs} ref-polls "
              f"(image/copy refs asked for, summed over {probe.poll_passes} poll passes): "
              f"{status_ratio[vendor]:.3f} calls per ref-poll, {status_calls / len(instances):.1f} per instance")
    figures["calls_per_instance"] = {k: round(v, 2) for k, v in per_instance.items()}
    figures["status_calls_per_ref_poll"] = {k: round(v, 3) for k, v in status_ratio.items()}
    print()
    print("state journal (StateStore wrapped in this process)")
    print(f"  state file          {state_bytes:,} bytes at the end, {probe.max_state_bytes:,} at most")
    print(f"  writes              {probe.writes} ({probe.writes / total:.1f} per instance), "
          f"{probe.bytes_written / 2**20:.1f} MiB written in all")
    print(f"  time in writes      {probe.write_seconds:.2f} s (encode + write + fsync + rename), "
          f"reads {probe.reads} in {probe.read_seconds:.2f} s")
    print(f"  state lock held     {probe.locked_seconds:.2f} s = {100 * probe.locked_seconds / wall:.0f}% of wall "
          "(journal saves are serialised)")
    print(f"  execution log       {log_bytes:,} bytes")
    print(f"peak RSS              {rss:.0f} MiB (imagebak + emulator + SDKs, one process)")

    n = total
    targets = [
        Target(f"wall time for {n} instances", wall, max(10.0, 0.1 * n), "s"),
        Target("throughput", total / wall, 10.0, "instances/s", higher_is_better=True),
        Target("API calls per instance (worst vendor)", max(per_instance.values()), 12.0, "calls"),
        Target("state writes per instance", probe.writes / total, 15.0, "writes"),
        Target("state lock held / wall", probe.locked_seconds / wall, 0.25, "fraction"),
        Target("largest state file", probe.max_state_bytes / 2**10, 4 * n, "KiB"),
        Target("peak RSS", rss, 400.0, "MiB"),
    ]
    for vendor in ("aliyun", "jdcloud"):
        if vendor in status_ratio:
            targets.append(Target(f"{vendor} status calls per ref-poll (batching)", status_ratio[vendor], 0.25, ""))
    if "huawei" in status_ratio:  # ShowJob takes one job id: 1.0 is the floor there
        targets.append(Target("huawei status calls per ref-poll", status_ratio["huawei"], 1.0, ""))
    targets.append(Target("instances done", statuses.get("done", 0), n, "", higher_is_better=True))
    print()
    print("targets (bench/README.md says why)")
    for t in targets:
        op = ">=" if t.higher_is_better else "<="
        print(f"  {'MET ' if t.met else 'MISS'}  {t.name:<44} {t.measured:10.3f} {op} {t.limit:<8g} {t.unit}")
    figures["targets"] = [{"name": t.name, "measured": round(t.measured, 3), "limit": t.limit,
                           "unit": t.unit, "met": t.met} for t in targets]
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
