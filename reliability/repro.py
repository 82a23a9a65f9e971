"""Deterministic reproducers of what the campaign found in the engine, for whoever fixes it.

    /work/main/.venv/bin/python reliability/repro.py journal-order   # duplicate copy after a crash
    /work/main/.venv/bin/python reliability/repro.py cleanup-leak    # untracked failed image
    /work/main/.venv/bin/python reliability/repro.py jd-copy-batch   # duplicate JD copy, no crash needed
    /work/main/.venv/bin/python reliability/repro.py data-image-leak # Huawei: a failed attempt's data image

Each prints what it saw and exits 1 while the bug is there, 0 once it is fixed.
docs/reliability.md explains both findings.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagebak.engine.journal import EXECUTIONS, Journal, in_flight, recover
from imagebak.execution.records import Artifact, Execution, InstanceWork, PolicySnapshot
from imagebak.execution.states import ArtifactEvent, ArtifactState, WorkStatus
from imagebak.state import StateStore
from reliability.checker import Checker, CheckReport
from reliability.trials import check
from reliability.world import World


def journal_order() -> bool:
    """Two lanes save the same instance; the older snapshot reaches the journal last; then a crash.

    ``Journal.save_instance`` turns the record into a dict (``asdict``) before ``_append`` takes the
    journal's lock, so a lane preempted between the two writes its snapshot after a newer one. Lane B
    (the system image's copy) snapshots while the data image's copy is still ``planned``; lane A
    journals the data copy ``submitting`` and makes the cloud call; B's stale line lands last. After a
    crash the resumed run reads ``planned``, skips adoption and submits the copy again: a duplicate
    with the same key (what the campaign saw on Huawei, where one instance has two copies per region).
    The preemption is forced here by holding lane B between its snapshot and its append.
    """
    folder = Path(tempfile.mkdtemp(prefix="imagebak-repro-"))
    store = StateStore(folder / "state.json")
    execution = _execution()
    with store.update() as state:
        state.entry(execution.policy_key).setdefault(EXECUTIONS, {})[execution.run_id] = execution.to_dict()
    journal = Journal(store)
    work = execution.instances["i-1"]
    system_copy, data_copy = work.copies["cn-east-3/img-sys"], work.copies["cn-east-3/img-data"]

    snapshot_taken, release = threading.Event(), threading.Event()
    original: Callable[[Journal, dict[str, Any]], None] = Journal._append

    def preempted_append(self: Journal, entry: dict[str, Any]) -> None:
        if threading.current_thread().name == "lane-b":
            snapshot_taken.set()
            release.wait(10)
        original(self, entry)

    def lane_b() -> None:
        system_copy.fire(ArtifactEvent.SUBMIT)
        journal.save_instance(execution, work)

    Journal._append = preempted_append  # type: ignore[method-assign]
    try:
        thread = threading.Thread(target=lane_b, name="lane-b")
        thread.start()
        snapshot_taken.wait(10)
        data_copy.fire(ArtifactEvent.SUBMIT)  # lane A: journaled before the call, as submit_once does
        journal.save_instance(execution, work)
        # ... lane A's CopyImageCrossRegion is made here: the copy exists in the cloud ...
        release.set()
        thread.join(10)
    finally:
        Journal._append = original  # type: ignore[method-assign]
    assert journal._fd is not None
    os.close(journal._fd)  # the process dies: its log is left, unlocked, for the next run
    state = store.read()
    recover(state)
    resumed = in_flight(state)[0].instances["i-1"].copies["cn-east-3/img-data"].state
    shutil.rmtree(folder, ignore_errors=True)
    print(f"in memory the data copy is {data_copy.state.value}; the next run reads {resumed.value}")
    if resumed is ArtifactState.PLANNED:
        print("REPRODUCED: the resumed run would submit the copy again instead of adopting it (duplicate)")
        return True
    print("not reproduced: the journal kept the newest record")
    return False


def _execution() -> Execution:
    policy = PolicySnapshot(
        name="p",
        account="acc",
        region="cn-north-4",
        disks=["vda", "vdb"],
        copy_to=[("cn-east-3", None)],
        image_name="{policy}-{instance}-{time}",
        description="",
        retry_failed=1,
    )
    image = Artifact(
        key="ib-image",
        name="p-i-1",
        region="cn-north-4",
        state=ArtifactState.AVAILABLE,
        image_id="img-sys",
        extra_image_ids=["img-data"],
    )
    copies = {
        f"cn-east-3/{source}": Artifact(
            key=f"ib-copy-{source}", name=f"p-i-1-{source}", region="cn-east-3", source_image_id=source
        )
        for source in ("img-sys", "img-data")
    }
    work = InstanceWork("i-1", status=WorkStatus.COPYING, devices=["vda", "vdb"], image=image, copies=copies)
    return Execution(
        "acc/cn-north-4/p", "20260101T000000Z-abcdef", True, "2026-01-01T00:00:00+00:00", policy, {"i-1": work}
    )


def cleanup_leak() -> bool:
    """An image that fails is deleted "best effort" and re-made; when the delete fails, it is forgotten.

    ``Engine._image_failed`` calls ``cleanup.discard`` (which logs a failed delete and goes on) and
    then replaces the instance's image artifact, so the failed image's id leaves the state: it stays
    in the cloud with imagebak's tags, holding image and snapshot quota, and nothing will remove it.
    Here: the emulator fails the next creation half-way, and refuses every DeleteImage with a 503.
    """

    def arrange(world: World) -> None:
        _fail_next_creation(world)
        world.admin(
            "POST", "faults", {"vendor": "aliyun", "action": "DeleteImage", "error_rate": 1.0, "error_status": 503}
        )

    report = _run_once("aliyun", 1, arrange, poll="0.1")
    return _verdict(
        report.untracked,
        "REPRODUCED: a failed image whose delete failed is no longer in the state (leaked)",
        "not reproduced: every owned image is tracked",
    )


def data_image_leak() -> bool:
    """Huawei ``disks: [vda, vdb]``: one CreateImage makes a system image and a data image; when the
    system image fails, only it is deleted before the attempt is made again.

    ``Engine._image_failed`` discards ``image.image_id`` and nothing of ``image.extra_image_ids`` (or
    of the job's other images), so the failed attempt's data image stays, available, with imagebak's
    tags and the same run: a second data image of vdb for one execution, known to no record.
    Here: the emulator fails the next creation half-way (the job's system image), nothing else.
    """

    def arrange(world: World) -> None:
        _edit_config(world, lambda config: config.update(policies=[config["policies"][1]]))  # rel-hw-data only
        _fail_next_creation(world)

    report = _run_once("huawei", 1, arrange, poll="0.1")
    return _verdict(
        report.duplicates + report.untracked,
        "REPRODUCED: the failed attempt's data image was left behind (duplicate, untracked)",
        "not reproduced: nothing of the failed attempt is left",
    )


def _edit_config(world: World, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the world's policies.yaml (written when it started) before imagebak runs."""
    config = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    change(config)
    world.config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _fail_next_creation(world: World) -> None:
    world.admin("POST", "fail-next-creations", {"n": 1, "reason": "repro"})


def jd_copy_batch() -> bool:
    """A JD copy batch holds both instances' copies to one region; JD makes one copyImages call per name.

    ``actions.copy.batches`` puts up to ten copies of one route in a batch (JD's per-call limit), but
    ``JdcloudProvider.copy_images`` can only put copies with the same name in one copyImages call, so
    a batch of two instances' copies is two calls. When the first call makes its copy and the second
    is throttled, ``copy_images`` raises and the first copy's id is lost; ``submit_once`` takes the
    throttle as "refused before anything was made", drops every key of the batch from the keys to
    look up, and submits them all again: the first copy is made twice, the first one untracked.
    Made deterministic here: one lane (``concurrency: 1``), a poll interval longer than both images
    take (they are ready in the same pass: one batch per route) and a throttle rate on copyImages
    whose seeded draws let the first call through and throttle the second.
    """

    def arrange(world: World) -> None:
        _edit_config(world, lambda config: config["accounts"]["rel"].update(concurrency=1))
        world.admin("POST", "faults", {"vendor": "jdcloud", "action": "copyImages", "throttle_rate": 0.5})

    seed = next(n for n in range(10_000) if _draws(n, 2) == [False, True])
    report = _run_once("jdcloud", seed, arrange, poll="1.5")
    return _verdict(
        report.duplicates + report.untracked,
        "REPRODUCED: a copy made by the first call of a throttled batch was made again",
        "not reproduced: one copy per source image and region",
    )


def _run_once(vendor: str, seed: int, arrange: Callable[[World], None], *, poll: str) -> CheckReport:
    """A fresh world, ``arrange`` (faults, config), one ``imagebak run --all --force``, then the checker."""
    world = World(Path(tempfile.mkdtemp(prefix="imagebak-repro-")) / "world", vendor, seed=seed, time_scale=1500)
    world.start()
    try:
        arrange(world)
        code = world.imagebak(["run", "--all", "--force", "--poll-interval", poll], "run").wait(120)
        world.admin("POST", "faults/clear", {})
        report = check(world, Checker())
    finally:
        world.stop()
    print(f"imagebak run exited {code}; its output: {world.logs / 'run.out'}")
    return report


def _verdict(findings: list[str], reproduced: str, fixed: str) -> bool:
    for line in findings:
        print(f"  {line}")
    print(reproduced if findings else fixed)
    return bool(findings)


def _draws(seed: int, n: int) -> list[bool]:
    """Whether each of the first ``n`` calls is throttled by a 0.5 rate under the emulator's seeded RNG."""
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(n)]


REPRODUCERS: dict[str, Callable[[], bool]] = {
    "journal-order": journal_order,
    "cleanup-leak": cleanup_leak,
    "jd-copy-batch": jd_copy_batch,
    "data-image-leak": data_image_leak,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("finding", choices=sorted(REPRODUCERS))
    return 1 if REPRODUCERS[parser.parse_args(argv).finding]() else 0


if __name__ == "__main__":
    sys.exit(main())
