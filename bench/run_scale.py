"""Scale benchmark of ``imagebak run``: N instances per vendor, create -> wait -> copy to two regions.

Builds a synthetic emulator fixture (every instance has a cloud vda + vdb, quotas raised so nothing
is quota-limited), starts the emulator on it in a process of its own on 127.0.0.1 with a large time
scale and no state file, writes a temporary policies.yaml (policies spread so that each
account+region stays within the 20-policy quota, every instance in exactly one policy, copy_to two
regions) and runs

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
import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    POLICY_QUOTA,
    VENDORS,
    Probe,
    RunResult,
    Target,
    Watchdog,
    World,
    peak_rss_mib,
    run_imagebak,
    vendor_figures,
    world,
)

from imagebak.errors import StateError
from imagebak.state import StateStore

GRACE_SECONDS = 30.0  # the watchdog fires this long after --deadline


def _statuses_in_state(path: Path) -> Counter[str]:
    """Instance statuses of in-flight executions and of the last finished ones (read as imagebak reads them,
    without a lock: the state file is replaced atomically and its history log only appended to or replaced)."""
    found: Counter[str] = Counter()
    try:
        policies = StateStore(path).read().policies
    except StateError:
        return found
    for entry in policies.values():
        for execution in entry.get("executions", {}).values():
            found.update(w.get("status", "?") for w in execution.get("instances", {}).values())
        for summary in entry.get("history", [])[-1:]:
            found.update(w.get("status", "?") for w in summary.get("instances", {}).values())
    return found


def _partial(folder: Path, instances: int, deadline: float, probe: Probe, w: list[World]) -> Callable[[float], str]:
    """What the watchdog prints when ``imagebak run`` overruns its --deadline (the engine checks it between passes)."""

    def report(elapsed: float) -> str:
        statuses = _statuses_in_state(folder / "state.json")
        lines = [
            f"run_scale: WATCHDOG: imagebak run still busy {elapsed:.0f} s after start, "
            f"{elapsed - deadline:.0f} s past its --deadline; exiting with partial figures",
            f"  instance statuses in the state file: {dict(statuses)} of {instances}",
        ]
        if w:
            for vendor, actions in w[0].emu.counters().calls.items():
                lines.append(f"  {vendor:<8} {sum(actions.values()):>6} API calls: {actions}")
        lines.append(
            f"  state writes {probe.writes} ({probe.bytes_written / 2**20:.1f} MiB, largest file "
            f"{probe.max_state_bytes:,} bytes), journal appends {probe.wal_appends}, {probe.write_seconds:.1f} s "
            f"writing, lock held {probe.locked_seconds:.1f} s; {probe.poll_passes} poll passes"
        )
        lines.append(f"  peak RSS {peak_rss_mib():.0f} MiB")
        done = statuses.get("done", 0)
        lines.append("targets (bench/README.md says why)")
        lines.append(
            f"  {'MET ' if done >= instances else 'MISS'}  instances done by the deadline {done} >= {instances}"
        )
        lines.append(f"  MISS  wall time for {instances} instances > {elapsed:.0f} s (not finished)")
        return "\n".join(lines)

    return report


# ------------------------------------------------------------------ the run


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
    parser.add_argument("--copy-regions", type=int, choices=(1, 2), default=2, help="copy_to regions (default: 2)")
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
        "--existing-images",
        type=int,
        default=0,
        metavar="N",
        help="N available private images already in every region of every account (older backups); shows "
        "calls that grow with the images in a region (default: 0)",
    )
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (state, log, policies)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.instances_per_vendor < 1:
        parser.error("--instances-per-vendor must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="imagebak-bench-"))
    instances = args.instances_per_vendor * len(args.vendors)
    probe = Probe()
    running: list[World] = []
    report = _partial(folder, instances, args.deadline, probe, running)
    cleanup = None if args.keep else (lambda: shutil.rmtree(folder, ignore_errors=True))
    try:
        with Watchdog(args.deadline + GRACE_SECONDS, report, cleanup) as dog:
            counts = dict.fromkeys(args.vendors, args.instances_per_vendor)
            with world(
                counts,
                folder,
                seed=args.seed,
                time_scale=args.time_scale,
                copy_regions=args.copy_regions,
                policies_per_vendor=args.policies_per_vendor,
                existing=args.existing_images,
                concurrency=args.concurrency,
            ) as w:
                running.append(w)
                run = run_imagebak(w, poll_interval=args.poll_interval, deadline=args.deadline, probe=probe)
                dog.wait_if_fired()
                if run.error:
                    print(f"run_scale: {run.error}", file=sys.stderr)
                    return 2
                figures = _figures(args, w, run)  # while the state file and the log are still there
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:  # (a watchdog that fired has removed it and ended the process)
            shutil.rmtree(folder, ignore_errors=True)
    _print(figures)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


def _figures(args: argparse.Namespace, w: World, run: RunResult) -> dict[str, Any]:
    assert run.report is not None
    total, probe, wall = w.instances, run.probe, run.wall
    statuses = run.statuses
    copies: Counter[str] = Counter()
    for execution in run.report["executions"]:
        for work in execution["instances"].values():
            copies.update(copy["state"] for copy in work["copies"].values())
    log_path = w.folder / "execution.log"
    history = StateStore(w.state_path).history.path
    return {
        "instances": total,
        "per_vendor": {v: len(i) for v, i in w.ids.items()},
        "policies": len(run.report["executions"]),
        "copy_regions": args.copy_regions,
        "time_scale": args.time_scale,
        "poll_interval": args.poll_interval,
        "deadline": args.deadline,
        "existing_images": args.existing_images,
        "exit_code": run.exit_code,
        "result": run.report.get("result"),
        "deadline_hit": run.report.get("deadline_hit"),
        "statuses": dict(statuses),
        "copies": dict(copies),
        "done": statuses.get("done", 0),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(run.cpu, 3),
        "emulator_cpu_seconds": round(probe.emulator_cpu, 3),
        "instances_done_per_second": round(statuses.get("done", 0) / wall, 2),
        "api_calls_total": sum(sum(a.values()) for a in run.calls.values()),
        "vendors": vendor_figures(w.ids, run),
        "poll_passes": probe.poll_passes,
        "poll_seconds": round(probe.poll_seconds, 3),
        "state": {
            "final_bytes": w.state_path.stat().st_size if w.state_path.exists() else 0,
            "history_final_bytes": history.stat().st_size if history.exists() else 0,
            "history_appends": probe.history_appends,
            "history_rewrites": probe.history_rewrites,
            "history_bytes": probe.history_bytes,
            "max_bytes": probe.max_state_bytes,
            "writes": probe.writes,
            "writes_per_instance": round(probe.writes / total, 2),
            "bytes_written": probe.bytes_written,
            "journal_appends": probe.wal_appends,
            "journal_appends_per_instance": round(probe.wal_appends / total, 2),
            "journal_bytes": probe.wal_bytes,
            "bytes_per_instance": round(probe.journal_bytes / total),
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
        Target(
            "journal appends per instance",
            f["state"]["journal_appends_per_instance"],
            15.0,
            "appends",
        ),
        Target("state lock held / wall", f["state"]["locked_share_of_wall"], 0.25, "share"),
        Target("largest state file per instance", f["state"]["max_bytes"] / 1024 / n, 4.0, "KiB"),
        Target("peak RSS", f["peak_rss_mib"], 256.0, "MiB"),
    ]
    for vendor, limit in (("aliyun", 0.25), ("jdcloud", 0.25), ("huawei", 1.0)):
        per_100 = vendors.get(vendor, {}).get("status_calls_per_100_refs")
        if per_100 is not None:
            targets.append(Target(f"{vendor} status calls per ref polled", per_100 / 100, limit, "calls"))
    return targets


def _print(f: dict[str, Any]) -> None:
    n, wall = f["instances"], f["wall_seconds"]
    print(
        f"imagebak run --all: {n} instances ({', '.join(f'{v} {k}' for v, k in f['per_vendor'].items())}), "
        f"{f['policies']} policies, copy_to {f['copy_regions']} region(s), time scale x{f['time_scale']:g}, "
        f"poll every {f['poll_interval']:g} s, deadline {f['deadline']:g} s"
        + (f", {f['existing_images']} older images per region" if f["existing_images"] else "")
    )
    print(f"  result              {f['result']} (exit {f['exit_code']}), deadline hit: {f['deadline_hit']}")
    print(f"  instances           {f['statuses']}; copies {f['copies']}")
    print(
        f"  wall                {wall:.2f} s   (CPU {f['cpu_seconds']:.2f} s: imagebak in this process + the "
        f"emulator's process, of which the emulator {f['emulator_cpu_seconds']:.2f} s)"
    )
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
        per_100 = v["status_calls_per_100_refs"]
        print(
            f"  {'':<8} status polls: {v['status_calls']} calls for {v['refs_polled']} refs polled "
            f"= {f'{per_100 / 100:.3f}' if per_100 is not None else '-'} per ref "
            f"({v['status_calls_per_instance']:.1f}/instance); other calls {v['other_calls_per_instance']:.1f}/instance"
        )
    st = f["state"]
    print()
    print("state journal (StateStore and Journal wrapped in this process)")
    print(
        f"  journal appends     {st['journal_appends']} ({st['journal_appends_per_instance']:.1f} per instance, "
        f"those before a cloud call fsync'ed), {st['journal_bytes']:,} bytes"
    )
    print(f"  state file          {st['final_bytes']:,} bytes at the end, {st['max_bytes']:,} at most")
    print(
        f"  history log         {st['history_final_bytes']:,} bytes at the end; {st['history_appends']} appends, "
        f"{st['history_rewrites']} rewrites, {st['history_bytes']:,} bytes written"
    )
    print(
        f"  state rewrites      {st['writes']} ({st['writes_per_instance']:.2f} per instance), "
        f"{st['bytes_written'] / 2**20:.1f} MiB written; {st['bytes_per_instance']:,} bytes per instance with the log"
    )
    print(
        f"  time in rewrites    {st['write_seconds']:.2f} s (encode + write + fsync + rename); "
        f"reads {st['reads']} in {st['read_seconds']:.2f} s"
    )
    print(f"  state lock held     {st['locked_seconds']:.2f} s = {100 * st['locked_share_of_wall']:.0f}% of wall")
    print(f"  execution log       {f['log_bytes']:,} bytes")
    print(f"peak RSS              {f['peak_rss_mib']:.0f} MiB (imagebak + SDKs: this process, not the emulator's)")
    targets = _targets(f)
    print()
    print("targets (bench/README.md says why)")
    for t in targets:
        op = ">=" if t.higher_is_better else "<="
        print(f"  {'MET ' if t.met else 'MISS'}  {t.name:<40} {t.measured:10.3f}  {op} {t.limit:<8g} {t.unit}")
    f["targets"] = [{**t.to_json(), "met": t.met} for t in targets]


if __name__ == "__main__":
    sys.exit(main())
