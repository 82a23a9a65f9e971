"""Micro-benchmark of the state journal: the cost of one ``Journal.save_instance``.

Every change to one instance's record (about a dozen per instance per run) locks the state file,
reads and decodes all of it, serialises the instance's execution, re-encodes the whole state and
writes it back with fsync + rename + fsync of the folder. This measures how that scales with the
number of in-flight instance records in the state file.

    /tmp/venv/bin/python bench/journal_cost.py                 # 10 / 100 / 1000 records
    /tmp/venv/bin/python bench/journal_cost.py --sizes 10 300 --saves 50

Nothing here talks to a cloud: it only writes a temporary state file (in --dir, default the
system temp folder; put it on the disk the real state lives on, fsync cost depends on it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness  # noqa: F401  (first: measure the imagebak of this checkout)

from imagebak.engine.journal import EXECUTIONS, Journal
from imagebak.execution.records import Artifact, Execution, InstanceWork, PolicySnapshot
from imagebak.execution.states import ArtifactState, WorkStatus
from imagebak.ownership import idempotency_key
from imagebak.state import StateStore, policy_key

COPY_REGIONS = ("cn-qingdao", "cn-beijing")


@dataclass
class Timers:
    """Seconds spent in StateStore.read (read + JSON decode) and StateStore._write (encode + fsync)."""

    read: float = 0.0
    write: float = 0.0
    bytes_written: int = 0
    writes: int = 0


@contextmanager
def instrumented(timers: Timers, *, fsync: bool) -> Iterator[None]:
    """Wrap the store's read/_write in this process only (and optionally turn fsync into a no-op)."""
    original_read = StateStore.read
    original_write = StateStore._write
    original_fsync = os.fsync

    def read(self: StateStore) -> Any:
        start = time.perf_counter()
        try:
            return original_read(self)
        finally:
            timers.read += time.perf_counter() - start

    def write(self: StateStore, data: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            original_write(self, data)
        finally:
            timers.write += time.perf_counter() - start
            timers.writes += 1
            timers.bytes_written += self.path.stat().st_size

    StateStore.read = read  # type: ignore[method-assign]
    StateStore._write = write  # type: ignore[method-assign]
    if not fsync:
        os.fsync = lambda fd: None
    try:
        yield
    finally:
        StateStore.read = original_read  # type: ignore[method-assign]
        StateStore._write = original_write  # type: ignore[method-assign]
        os.fsync = original_fsync


def make_work(instance_id: str, key: str) -> InstanceWork:
    """A realistic mid-run record: image available, two copies pending (the biggest a record gets)."""
    image = Artifact(
        key=idempotency_key(key, instance_id, "image", 1),
        name=f"nightly-{instance_id}-20260101T0200Z",
        region="cn-shanghai",
        state=ArtifactState.AVAILABLE,
        ref="m-uf6" + instance_id[-17:],
        image_id="m-uf6" + instance_id[-17:],
        progress=100,
        size_gb=140,
        submitted_at="2026-01-01T02:00:01.123456+00:00",
        finished_at="2026-01-01T02:09:12.654321+00:00",
    )
    copies = {
        f"{region}/{image.image_id}": Artifact(
            key=idempotency_key(key, instance_id, "copy", region, 1),
            name=image.name,
            region=region,
            source_image_id=image.image_id,
            state=ArtifactState.PENDING,
            ref="m-copy" + instance_id[-14:],
            image_id="m-copy" + instance_id[-14:],
            progress=37,
            size_gb=140,
            submitted_at="2026-01-01T02:09:13.000000+00:00",
        )
        for region in COPY_REGIONS
    }
    return InstanceWork(instance_id, status=WorkStatus.COPYING, devices=["vda", "vdb"], image=image, copies=copies)


def make_executions(records: int, per_execution: int) -> list[Execution]:
    executions = []
    for start in range(0, records, per_execution):
        name = f"nightly-{start // per_execution:03d}"
        key = policy_key("aliyun-bench", "cn-shanghai", name)
        snapshot = PolicySnapshot(
            name=name,
            account="aliyun-bench",
            region="cn-shanghai",
            disks="all",
            copy_to=[(r, None) for r in COPY_REGIONS],
            image_name="{policy}-{instance}-{time}",
            description="",
            retry_failed=1,
        )
        ids = [f"i-uf6{n:017d}" for n in range(start, min(records, start + per_execution))]
        executions.append(
            Execution(
                policy_key=key,
                run_id="20260101T020000Z-abcdef",
                manual=False,
                started_at="2026-01-01T02:00:00+00:00",
                policy=snapshot,
                instances={i: make_work(i, key) for i in ids},
            )
        )
    return executions


@dataclass
class Row:
    records: int
    per_execution: int
    fsync: bool
    ms_per_save: float
    p95_ms: float
    read_ms: float
    write_ms: float
    other_ms: float
    bytes_per_save: int


def measure(folder: Path, records: int, per_execution: int, saves: int, *, fsync: bool) -> Row:
    path = folder / f"state-{records}-{per_execution}-{int(fsync)}.json"
    journal = Journal(StateStore(path))
    executions = make_executions(records, per_execution)
    with journal.store.update() as state:  # seed the file in one write: every record in flight
        for execution in executions:
            state.entry(execution.policy_key).setdefault(EXECUTIONS, {})[execution.run_id] = execution.to_dict()
    pairs = [(e, w) for e in executions for w in e.instances.values()]
    timers = Timers()
    samples: list[float] = []
    with instrumented(timers, fsync=fsync):
        for n in range(saves):
            execution, work = pairs[(n * 7919) % len(pairs)]  # spread over the file
            assert work.image is not None
            work.image.progress = n % 100  # a real change each time
            start = time.perf_counter()
            journal.save_instance(execution, work)
            samples.append(time.perf_counter() - start)
    total = sum(samples)
    q95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)
    return Row(
        records=records,
        per_execution=per_execution,
        fsync=fsync,
        ms_per_save=1000 * total / saves,
        p95_ms=1000 * q95,
        read_ms=1000 * timers.read / saves,
        write_ms=1000 * timers.write / saves,
        other_ms=1000 * (total - timers.read - timers.write) / saves,
        bytes_per_save=timers.bytes_written // max(1, timers.writes),
    )


def _best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10, 100, 1000],
        help="in-flight instance records in the state file (default: 10 100 1000)",
    )
    parser.add_argument(
        "--per-execution", type=int, default=10, help="instances per execution (policy run) in the layout (default: 10)"
    )
    parser.add_argument(
        "--saves", type=int, default=0, help="saves per size (default: 200 for <=100 records, 50 above)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temporary state files")
    parser.add_argument(
        "--skip-nofsync", action="store_true", help="do not also measure with fsync disabled (shows the share of fsync)"
    )
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="imagebak-journal-", dir=args.dir))
    rows: list[Row] = []
    layouts: list[Callable[[int], int]] = [lambda n: min(n, args.per_execution), lambda n: n]
    try:
        for records in args.sizes:
            saves = args.saves or (200 if records <= 100 else 50)
            seen: set[int] = set()
            for layout in layouts:
                per_execution = layout(records)
                if per_execution in seen:
                    continue
                seen.add(per_execution)
                for fsync in (True, False) if not args.skip_nofsync else (True,):
                    rows.append(measure(folder, records, per_execution, saves, fsync=fsync))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"journal cost: Journal.save_instance, state file in {args.dir or tempfile.gettempdir()}")
    header = (
        f"{'records':>7} {'per-exec':>8} {'fsync':>5} {'ms/save':>8} {'p95 ms':>7} "
        f"{'read+decode':>11} {'encode+write':>12} {'other':>6} {'bytes/save':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.records:>7} {r.per_execution:>8} {'yes' if r.fsync else 'no':>5} {r.ms_per_save:>8.2f} "
            f"{r.p95_ms:>7.2f} {r.read_ms:>11.2f} {r.write_ms:>12.2f} {r.other_ms:>6.2f} "
            f"{r.bytes_per_save:>11,}"
        )
    print()
    print("encoding the whole state once (json.dumps; the product uses indent=1, sort_keys=True):")
    for records in args.sizes:
        data = {"format": "imagebak-state", "version": 1, "policies": {}}
        for e in make_executions(records, min(records, args.per_execution)):
            data["policies"][e.policy_key] = {EXECUTIONS: {e.run_id: e.to_dict()}}
        current = _best_of(lambda d=data: json.dumps(d, ensure_ascii=False, indent=1, sort_keys=True))
        compact = _best_of(lambda d=data: json.dumps(d, ensure_ascii=False, separators=(",", ":"), sort_keys=True))
        print(
            f"  {records:>5} records: indent=1 {1000 * current:7.2f} ms, compact (C encoder) {1000 * compact:6.2f} ms"
            f"  (x{current / compact:.1f})"
        )
    synced = {r.records: r for r in rows if r.fsync and r.per_execution == min(r.records, args.per_execution)}
    if len(synced) >= 2:
        small, large = synced[min(synced)], synced[max(synced)]
        print()
        print(
            f"scaling {small.records} -> {large.records} records: x{large.ms_per_save / small.ms_per_save:.1f} "
            f"time per save, x{large.bytes_per_save / small.bytes_per_save:.1f} bytes per save"
        )
        print(
            f"upper bound for one run of {large.records} instances (~13 saves per instance, as bench/run_scale.py "
            f"measures, all in flight): ~{13 * large.records * large.ms_per_save / 1000:.0f} s of serialised saves"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
