"""Give a world a past: the images and the state history that earlier nightly runs would have left.

After one real ``imagebak run`` in a fresh world, ``add_history`` clones what that run left behind
into ``runs - 1`` earlier runs, one day apart: every image, copy and snapshot it made (new ids;
names, run ids, idempotency keys and the JD description marker rewritten; times moved back), and
the run's summary and recovery points into each policy's history. The cloud then holds ``runs``
runs' worth of images, as an account does after a month of backups (these policies have no
retention, so imagebak deletes none), and the state holds what imagebak keeps after them: the last
``HISTORY_LENGTH`` summaries and every run's recovery points per policy.

Cloning a real run, instead of writing records by hand, keeps the records exactly as the product
makes them; the emulator's own persistence format (``CloudModel.to_dict`` / ``load_dynamic_state``,
read and replaced over its admin API, ``/_emulator/dynamic-state``: the emulator runs in a process
of its own) and the product do the writing: each cloned run is recorded as the journal records a
finished execution (``journal.apply`` of its finish line, in a ``StateStore.update``), oldest
first, so the state file and its history log (appends, and the compactions they call for) are what
``runs`` runs would have left.
"""

from __future__ import annotations

import copy
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from harness import World

from imagebak.emulator.rules import rules_for
from imagebak.engine.journal import HISTORY, POINTS, apply
from imagebak.ownership import idempotency_key
from imagebak.state import StateStore

TIME_FIELDS = frozenset({"created_at", "ready_at", "fail_at", "started_at", "finished_at"})
RUN_ID = re.compile(r"(?<!\d)(\d{8}T\d{6}Z)(-[0-9a-f]{6})")  # ownership.run_id
STAMP = re.compile(r"(?<!\d)(\d{8}T\d{4})(?!\d)")  # ownership.image_name's {time} (JD names drop its Z)
KEY = re.compile(r"ib-[0-9a-f]{32}")  # ownership.idempotency_key


@dataclass
class HistoryInfo:
    runs: int
    images_before: int
    images_after: int
    snapshots_after: int
    history_per_policy: int
    points_per_policy: int
    state_bytes: int
    history_bytes: int  # the state's history log


class _Aging:
    """Rewrites one record of the last run into the same record ``days`` days earlier."""

    def __init__(self, days: int, ids: dict[str, str]) -> None:
        self.delta = timedelta(days=days)
        self.days = days
        self.ids = ids  # old id -> id of the clone
        self._id = re.compile("|".join(map(re.escape, sorted(ids, key=len, reverse=True)))) if ids else None

    def text(self, value: str) -> str:
        if self._id is not None:
            value = self._id.sub(lambda m: self.ids[m.group(0)], value)
        value = KEY.sub(lambda m: idempotency_key(m.group(0), "history", self.days), value)
        value = RUN_ID.sub(lambda m: self._shift(m.group(1), "%Y%m%dT%H%M%SZ") + m.group(2), value)
        return STAMP.sub(lambda m: self._shift(m.group(1), "%Y%m%dT%H%M"), value)

    def _shift(self, stamp: str, fmt: str) -> str:
        return (datetime.strptime(stamp, fmt) - self.delta).strftime(fmt)

    def record(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {self.text(k): self.record(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.record(v) for v in value]
        if isinstance(value, str):
            if key in TIME_FIELDS:
                return (datetime.fromisoformat(value) - self.delta).isoformat()
            return self.text(value)
        return value


def add_history(w: World, runs: int, seed: int = 1) -> HistoryInfo:
    """Turn the single run in ``w`` (cloud and state) into ``runs`` runs, the earlier ones cloned."""
    data = w.emu.dynamic_state()
    provider = {acc["name"]: acc["provider"] for acc in data["accounts"]}
    rng = random.Random(seed)
    taken = {i["image_id"] for i in data["images"]} | {s["snapshot_id"] for s in data["snapshots"]}

    def new_id(entity: dict[str, Any], field: str) -> str:
        rules = rules_for(provider[entity["account"]])
        fmt = rules.image_id if field == "image_id" else rules.snapshot_id
        while (candidate := fmt.generate(rng)) in taken:
            pass
        taken.add(candidate)
        return candidate

    images, snapshots = list(data["images"]), list(data["snapshots"])
    agings: dict[int, _Aging] = {}
    for days in range(1, runs):
        ids = {i["image_id"]: new_id(i, "image_id") for i in data["images"]}
        ids |= {s["snapshot_id"]: new_id(s, "snapshot_id") for s in data["snapshots"]}
        agings[days] = aging = _Aging(days, ids)
        images += [aging.record(copy.deepcopy(i)) for i in data["images"]]
        snapshots += [aging.record(copy.deepcopy(s)) for s in data["snapshots"]]
    w.emu.load_dynamic_state({**data, "images": images, "snapshots": snapshots})

    store = StateStore(w.state_path)
    finished = {}  # policy key -> the finish line of its one real run
    for key, entry in store.read().policies.items():
        for summary in entry.get(HISTORY, [])[-1:]:
            run = summary["run_id"]
            points = [p for p in entry.get(POINTS, []) if p["run"] == run]
            finished[key] = {"key": key, "run": run, "finished": summary, "points": points}
    with store.update() as state:  # the real run is recorded again last, after the older ones
        for key, line in finished.items():
            entry = state.policies[key]
            entry[HISTORY] = [s for s in entry[HISTORY] if s["run_id"] != line["run"]]
            entry[POINTS] = [p for p in entry[POINTS] if p["run"] != line["run"]]
    for days in range(runs - 1, -1, -1):
        with store.update() as state:
            for line in finished.values():
                aged = agings[days].record(copy.deepcopy(line)) if days else line
                apply(state, aged)
    entries = store.read().policies.values()
    return HistoryInfo(
        runs=runs,
        images_before=len(data["images"]),
        images_after=len(images),
        snapshots_after=len(snapshots),
        history_per_policy=max((len(e.get(HISTORY, [])) for e in entries), default=0),
        points_per_policy=max((len(e.get(POINTS, [])) for e in entries), default=0),
        state_bytes=w.state_path.stat().st_size,
        history_bytes=store.history.path.stat().st_size if store.history.path.exists() else 0,
    )
