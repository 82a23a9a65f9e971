"""The checker: after each trial, compare what the cloud holds with what imagebak's state knows.

Rules (issue #12):

- **duplicates**: at most one live image per (policy, instance, execution, image role) — the role is
  the image kind and its disks, so a Huawei system image and its data image are two roles — and at
  most one live copy per (source image, destination region). Failed images do not count: imagebak
  deletes and re-makes them on purpose (``retry_failed``).
- **untracked**: every image carrying imagebak's ownership marks (the ``imagebak-*`` tags, the JD
  description marker, the key a Huawei copy carries in its description) is known to the state:
  its id is in an execution's history or in-flight record, or its idempotency key is that of an
  in-flight artifact (submitted, answer not yet recorded, adopted by the next run).
- **missing**: every image and copy that the history calls done exists in the cloud and is available.
- **unreadable**: ``imagebak policy list`` and ``imagebak run --dry-run`` exit 0.
- **stuck** is judged by the trial (bounded follow-up runs); the checker reports what is in flight.

It also lists instances that finished ``failed`` (not a rule: a storm may fail one for good reason,
but a kill should not), so that a run which gave up on an instance is seen and can be looked into.

The history keeps only the last executions of a policy, so ids seen in the state are remembered for
the life of the world: an image checked once stays tracked.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagebak.ownership import TAG_INSTANCE, TAG_KEY, TAG_POLICY, TAG_RUN
from imagebak.providers.jdcloud import parse_marker
from imagebak.state import StateStore

# A Huawei copy takes no tags at creation: its description ends with "[<idempotency key>]" until tagged.
_DESCRIPTION_KEY = re.compile(r"\[(ib-[0-9a-f]{32})\]")


@dataclass(frozen=True)
class OwnedImage:
    """An image in the emulated cloud that carries imagebak's ownership marks."""

    image_id: str
    region: str
    status: str
    key: str | None
    run: str | None
    policy: str | None
    instance: str | None
    source_image_id: str | None  # set for cross-region copies
    role: tuple[str, ...]  # image kind and its devices: a Huawei system image and its data image differ

    @property
    def live(self) -> bool:
        return self.status != "failed"


def owned_images(cloud: Mapping[str, Any]) -> list[OwnedImage]:
    """Images of the emulator's state file that imagebak marked as its own (tags, JD marker, copy key)."""
    found = []
    for raw in cloud.get("images", []):
        description = raw.get("description") or ""
        tags = dict(raw.get("tags") or {})
        marker = parse_marker(description)  # JD keeps the tags in the description
        if marker is not None:
            tags = {**marker[1], TAG_KEY: marker[0], **tags}
        key = tags.get(TAG_KEY)
        if key is None:
            match = _DESCRIPTION_KEY.search(description)
            key = match.group(1) if match else None
        if key is None and TAG_RUN not in tags:
            continue
        devices = tuple(sorted(d.get("device", "") for d in raw.get("disks", [])))
        found.append(
            OwnedImage(
                image_id=raw["image_id"],
                region=raw["region"],
                status=raw.get("status", ""),
                key=key,
                run=tags.get(TAG_RUN),
                policy=tags.get(TAG_POLICY),
                instance=tags.get(TAG_INSTANCE),
                source_image_id=raw.get("source_image_id"),
                role=(raw.get("kind", ""), *devices),
            )
        )
    return found


@dataclass
class Known:
    """What imagebak's state (file and journals) says exists, in flight or finished."""

    image_ids: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)  # of in-flight artifacts
    in_flight: list[str] = field(default_factory=list)  # "<policy key> <run id>" of unfinished executions
    done: list[dict[str, Any]] = field(default_factory=list)  # history entries' instances that are done
    failed: list[str] = field(default_factory=list)  # "<run> <instance>: <reason>" of failed instances


def _work_ids(work: Mapping[str, Any]) -> Iterator[tuple[str | None, str | None]]:
    """(image id, key) of every artifact of one in-flight instance record (refs may be image ids too)."""
    artifacts = ([work["image"]] if work.get("image") else []) + list((work.get("copies") or {}).values())
    for artifact in artifacts:
        yield artifact.get("image_id"), artifact.get("key")
        yield artifact.get("ref"), None
        for extra in artifact.get("extra_image_ids") or []:
            yield extra, None
    for leftover in work.get("leftovers") or []:  # failed images the cloud would not delete, kept on record
        yield leftover, None


def _summary_ids(instance: Mapping[str, Any]) -> Iterator[str]:
    """Image ids of one instance in a finished execution's summary."""
    yield from filter(None, [instance.get("image_id"), *(instance.get("extra_image_ids") or [])])
    yield from instance.get("leftovers") or []
    yield from filter(None, (instance.get("copies") or {}).values())


def read_known(state_path: Path, journals: Iterable[Path]) -> Known:
    """Read the state file and its history log, plus the journal lines not yet folded into them (a dead process's
    log). ``state.json`` is read as plain JSON, the history log by imagebak's own replay."""
    known = Known()
    data = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {"policies": {}}
    StateStore(state_path).history.replay(data.setdefault("policies", {}))
    works: list[Mapping[str, Any]] = []
    for key, entry in data.get("policies", {}).items():
        for run_id, execution in (entry.get("executions") or {}).items():
            known.in_flight.append(f"{key} {run_id}")
            works += list(execution.get("instances", {}).values())
        for finished in entry.get("history") or []:
            _add_finished(known, finished)
    for path in journals:
        for line in path.read_bytes().split(b"\n"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the torn last line, or the empty one after the last newline
            if "work" in entry:
                works.append(entry["work"])
            elif "finished" in entry:  # finished, but the state file does not say so yet
                _add_finished(known, entry["finished"])
                finished = f"{entry['key']} {entry['run']}"
                known.in_flight = [e for e in known.in_flight if e != finished]
    for work in works:
        for image_id, key in _work_ids(work):
            known.image_ids.update(filter(None, [image_id]))
            known.keys.update(filter(None, [key]))
    return known


def _add_finished(known: Known, finished: Mapping[str, Any]) -> None:
    for instance_id, instance in (finished.get("instances") or {}).items():
        known.image_ids.update(_summary_ids(instance))
        if instance.get("status") == "done":
            known.done.append(instance)
        elif instance.get("status") == "failed":
            known.failed.append(f"{finished.get('run_id')} {instance_id}: {instance.get('reason')}")


@dataclass
class CheckReport:
    """Anomalies first seen by this check (each image counts once, in the trial that revealed it)."""

    duplicates: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # instances that finished failed (informational)
    new_images: int = 0
    new_copies: int = 0
    owned: int = 0

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.untracked or self.missing or self.unreadable)


class Checker:
    """Checks one world after each trial; remembers what it saw, so every anomaly is counted once."""

    def __init__(self) -> None:
        self.tracked: set[str] = set()
        self.seen: set[str] = set()
        self.reported: set[str] = set()

    def check(self, cloud: Mapping[str, Any], known: Known, cli_exits: Mapping[str, int]) -> CheckReport:
        """``cloud``: the emulator's state; ``known``: imagebak's; ``cli_exits``: read-only command -> exit code."""
        report = CheckReport(in_flight=list(known.in_flight))
        images = owned_images(cloud)
        self.tracked |= known.image_ids
        report.owned = len(images)
        for image in images:
            if image.image_id not in self.seen:
                self.seen.add(image.image_id)
                if image.source_image_id:
                    report.new_copies += 1
                else:
                    report.new_images += 1
        report.duplicates = self._new(f"duplicate {d}" for d in duplicates(images))
        report.untracked = self._new(
            f"untracked {i.image_id} ({i.region}, {i.status}, run {i.run}, key {i.key})"
            for i in images
            if i.image_id not in self.tracked and i.key not in known.keys
        )
        status = {raw["image_id"]: raw.get("status") for raw in cloud.get("images", [])}
        report.missing = self._new(
            f"missing {image_id} (cloud status {status.get(image_id, 'absent')})"
            for instance in known.done
            for image_id in _summary_ids(instance)
            if status.get(image_id) != "available"
        )
        report.unreadable = [f"{command} exited {code}" for command, code in cli_exits.items() if code != 0]
        report.failed = self._new(f"failed instance {line}" for line in known.failed)
        return report

    def _new(self, findings: Iterable[str]) -> list[str]:
        fresh = [f for f in dict.fromkeys(findings) if f not in self.reported]
        self.reported.update(fresh)
        return fresh


def duplicates(images: Iterable[OwnedImage]) -> list[str]:
    """Groups of live images that should be one: per execution and role, and per copy route."""
    groups: defaultdict[tuple[Any, ...], list[str]] = defaultdict(list)
    for image in images:
        if not image.live:
            continue
        if image.source_image_id:
            groups[("copy", image.source_image_id, image.region)].append(image.image_id)
        else:
            groups[("image", image.policy, image.instance, image.run, image.role)].append(image.image_id)
    return [f"{'/'.join(map(str, key[1:]))}: {', '.join(sorted(ids))}" for key, ids in groups.items() if len(ids) > 1]
