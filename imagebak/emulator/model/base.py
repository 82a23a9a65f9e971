"""What every resource mixin of the model builds on.

Owns the lock, the clock, the tables, lazy status updates (``synced``), id generation, latency
draws, scoped lookups (an entity of another account or region does not exist), ClientToken
idempotency and ``atomic`` blocks (all or nothing). Public methods return deep copies so a
front-end formatting a response never sees a half-updated entity and cannot mutate the model.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import random
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from imagebak.emulator.clock import Clock, SystemClock
from imagebak.emulator.model.entities import (
    Account,
    CloudError,
    Dated,
    Disk,
    Image,
    Instance,
    Regional,
    Snapshot,
    Task,
    clone,
)
from imagebak.emulator.rules import IdFormat, Latency, ProviderRules, rules_for

S = TypeVar("S", bound="ModelBase")
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R", bound=Regional)
D = TypeVar("D", bound=Dated)
Made = TypeVar("Made", Image, Snapshot)
E = TypeVar("E")


def synced(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Run under the model lock after bringing lazy statuses up to the clock."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.lock:
            self._refresh()
            return method(self, *args, **kwargs)

    return wrapper


def idempotent(
    action: str,
) -> Callable[[Callable[Concatenate[S, str, P], Made]], Callable[Concatenate[S, str, P], Made]]:
    """Aliyun ClientToken semantics for a creation taking ``(account, ...)`` and a ``client_token`` keyword:
    a repeated (account, action, token) returns the first result instead of acting again."""

    def decorate(method: Callable[Concatenate[S, str, P], Made]) -> Callable[Concatenate[S, str, P], Made]:
        @functools.wraps(method)
        def wrapper(self: S, account: str, /, *args: P.args, **kwargs: P.kwargs) -> Made:
            token = cast("str | None", kwargs.get("client_token"))
            return self._idempotent(account, action, token, lambda: method(self, account, *args, **kwargs))

        return wrapper

    return decorate


def progress_at(entity: Image | Snapshot, at: datetime) -> int:
    """Whole percents of an entity's duration passed at ``at`` (99 at most until it is done)."""
    total = (entity.ready_at - entity.created_at).total_seconds()
    if total <= 0:
        return 100
    return max(0, min(99, int(100 * (at - entity.created_at).total_seconds() / total)))


def advance(entity: Image | Snapshot, now: datetime, pending: str, done: str) -> bool:
    """Move one in-flight entity to ``now``; True when it has reached a final status."""
    if entity.status != pending:
        return True
    if entity.fail_at is not None and now >= entity.fail_at:
        entity.status, entity.progress = "failed", progress_at(entity, entity.fail_at)
        return True
    if now >= entity.ready_at:
        entity.status, entity.progress = done, 100
        return True
    entity.progress = progress_at(entity, now)
    return False


def final_at(entity: Image | Snapshot, now: datetime) -> datetime:
    """When an in-flight entity next changes status (never before ``now``); progress is read off the clock."""
    return max(min(t for t in (entity.ready_at, entity.fail_at) if t is not None), now)


class InFlight:
    """Ids of creating images and progressing snapshots, each with the time its status changes.

    A refresh then touches only the entities whose time has come instead of every entity in flight on
    every call, so a call's cost does not grow with how much is in flight (it made a run of N images
    cost N² in the emulator, which the benchmarks then counted as imagebak's time). Progress is not
    stored as time passes: a caller's copy gets it from the clock (``ModelBase._out``).
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._next: dict[str, datetime | None] = dict.fromkeys(ids)  # None: look at it at the next refresh
        self._now: set[str] = set(self._next)
        self._heap: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()

    def add(self, entity_id: str) -> None:
        self._next[entity_id] = None
        self._now.add(entity_id)

    def touch(self, entity_id: str) -> None:
        """Its times changed (an injected failure): look at it at the next refresh."""
        if entity_id in self._next:
            self.add(entity_id)

    def discard(self, entity_id: str) -> None:
        self._next.pop(entity_id, None)
        self._now.discard(entity_id)

    def schedule(self, entity_id: str, at: datetime) -> None:
        self._next[entity_id] = at
        heapq.heappush(self._heap, (at, next(self._order), entity_id))

    def due(self, now: datetime) -> list[str]:
        """The ids whose time has come, each once (a superseded schedule is skipped)."""
        ids, self._now = self._now, set()
        while self._heap and self._heap[0][0] <= now:
            at, _, entity_id = heapq.heappop(self._heap)
            if self._next.get(entity_id) == at:
                ids.add(entity_id)
        return [i for i in ids if i in self._next]

    def copy(self) -> InFlight:
        """The same ids, each to be looked at again (a savepoint's copy)."""
        return InFlight(self._next)


class Placed(dict[str, R]):
    """Entities by id that also know which are in each account and region.

    Quota counts and image-name checks look at one region's entities instead of every entity of the
    world: a create or copy in a world of N images cost O(N) in the emulator, which a benchmark
    running it in imagebak's process counts as imagebak's time. Entities never change account or
    region; only ``[]=``, ``del`` and ``pop`` change the table (no ``update``, ``setdefault``, ``clear``).
    """

    def __init__(self, entities: Mapping[str, R] | None = None) -> None:
        super().__init__()
        self._at: dict[tuple[str, str], dict[str, R]] = {}
        for key, entity in (entities or {}).items():
            self[key] = entity

    def at(self, account: str, region: str) -> Mapping[str, R]:
        """The entities of one account and region, by id."""
        return self._at.get((account, region), {})

    def __setitem__(self, key: str, entity: R) -> None:
        if key in self:
            del self[key]
        super().__setitem__(key, entity)
        self._at.setdefault((entity.account, entity.region), {})[key] = entity

    def __delitem__(self, key: str) -> None:
        entity = self[key]
        super().__delitem__(key)
        del self._at[(entity.account, entity.region)][key]

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            return super().pop(key, *default)
        entity = self[key]
        del self[key]
        return entity

    def copy(self) -> Placed[R]:
        """An independent table with the same entities (a savepoint), without re-placing each one."""
        out: Placed[R] = Placed()
        dict.update(out, self)
        out._at = {place: dict(entities) for place, entities in self._at.items()}
        return out


@dataclass(frozen=True)
class _Savepoint:
    """What ``atomic`` puts back when its block raises."""

    images: Placed[Image]
    snapshots: Placed[Snapshot]
    tasks: dict[str, Task]
    outcomes: list[tuple[Task, str | None, str | None]]
    pending: InFlight
    idempotency: dict[tuple[str, str, str], Image | Snapshot]
    fail_next: list[str]
    rng: tuple[Any, ...]


class ModelBase:
    """The tables and the helpers the resource mixins share; ``CloudModel`` composes the mixins."""

    def __init__(self, clock: Clock | None = None, *, seed: int = 0) -> None:
        self.clock: Clock = clock or SystemClock()
        # Request-independent and re-entrant: front-ends may hold it across several calls.
        self.lock = threading.RLock()
        self.seed = seed
        self._rng = random.Random(seed)
        self._now = self.clock.now()
        self._accounts: dict[str, Account] = {}
        self._instances: dict[str, Instance] = {}
        self._disks: dict[str, Disk] = {}
        self._images: Placed[Image] = Placed()
        self._snapshots: Placed[Snapshot] = Placed()
        self._tasks: dict[str, Task] = {}
        self._pending = InFlight()  # creating images / progressing snapshots
        self._quota_limits: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str | None, str], Latency] = {}  # (provider or None, op)
        self._idempotency: dict[tuple[str, str, str], Image | Snapshot] = {}
        self._fail_next: list[str] = []  # reasons, one per upcoming creation that will fail
        self._lag: dict[str | None, float] = {}  # provider (None: all) -> seconds new objects stay unlisted
        # Readings of vendor behaviour no source settles, switchable per test (see failures.QUIRKS).
        self._quirks: dict[str, bool] = {}

    # ---- all or nothing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Hold the lock for several calls; if the block raises, undo what its calls did.

        Undone: images, snapshots and tasks created or removed, task outcomes, idempotency records,
        pending injected failures and the id/latency RNG. Kept: statuses that moved with the clock.
        Tags and ``fail_image`` edit entities in place and are not undone (neither half-applies).
        """
        with self.lock:
            saved = self._savepoint()
            try:
                yield
            except BaseException:
                self._restore(saved)
                raise

    def _savepoint(self) -> _Savepoint:
        return _Savepoint(
            images=self._images.copy(),
            snapshots=self._snapshots.copy(),
            tasks=dict(self._tasks),
            outcomes=[(t, t.final_status, t.final_reason) for t in self._tasks.values()],
            pending=self._pending.copy(),
            idempotency=dict(self._idempotency),
            fail_next=list(self._fail_next),
            rng=self._rng.getstate(),
        )

    def _restore(self, saved: _Savepoint) -> None:
        self._images, self._snapshots, self._tasks = saved.images, saved.snapshots, saved.tasks
        for task, status, reason in saved.outcomes:
            task.final_status, task.final_reason = status, reason
        self._pending, self._idempotency, self._fail_next = saved.pending, saved.idempotency, saved.fail_next
        self._rng.setstate(saved.rng)

    def _out(self, entity: E) -> E:
        """A caller's copy; an image or snapshot still being made shows its progress as of now."""
        out = clone(entity)
        if isinstance(out, Image | Snapshot) and out.status in ("creating", "progressing"):
            out.progress = progress_at(out, self._now)
        return out

    # ---- time ----------------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._now = now = self.clock.now()
        for entity_id in self._pending.due(now):
            img = self._images.get(entity_id)
            entity: Image | Snapshot | None = img if img is not None else self._snapshots.get(entity_id)
            statuses = ("creating", "available") if img else ("progressing", "accomplished")
            if entity is None or advance(entity, now, *statuses):
                self._pending.discard(entity_id)
            else:
                self._pending.schedule(entity_id, final_at(entity, now))

    def _duration(self, account: str, op: str, size_gb: int) -> float:
        provider = self._accounts[account].provider
        latency = self._latency.get((provider, op)) or self._latency.get((None, op)) or rules_for(provider).latency[op]
        return latency.draw(size_gb, self._rng)

    def _new_id(self, fmt: IdFormat, reserved: Collection[str] = ()) -> str:
        taken = (self._images, self._snapshots, self._tasks, self._disks, self._instances)
        while True:
            candidate = fmt.generate(self._rng)
            if candidate not in reserved and not any(candidate in table for table in taken):
                return candidate

    # ---- scoped lookups ------------------------------------------------------------------------

    def _account(self, name: str) -> Account:
        acc = self._accounts.get(name)
        if acc is None:
            raise CloudError("not_found", f"account {name} does not exist", resource="account")
        return acc

    @staticmethod
    def _rules(acc: Account) -> ProviderRules:
        return rules_for(acc.provider)

    @staticmethod
    def _check_region(acc: Account, region: str) -> None:
        if region not in acc.regions:
            raise CloudError(
                "invalid_parameter",
                f"region {region} is not available to account {acc.name}",
                resource="region",
                detail="unknown_region",
            )

    def _scoped(self, table: Mapping[str, R], kind: str, account: str, region: str, entity_id: str) -> R:
        self._check_region(self._account(account), region)
        entity = table.get(entity_id)
        if entity is None or entity.account != account or entity.region != region:
            raise CloudError("not_found", f"{kind} {entity_id} does not exist in {region}", resource=kind)
        return entity

    def _instance(self, account: str, region: str, instance_id: str) -> Instance:
        return self._scoped(self._instances, "instance", account, region, instance_id)

    def _image(self, account: str, region: str, image_id: str) -> Image:
        return self._scoped(self._images, "image", account, region, image_id)

    def _snapshot(self, account: str, region: str, snapshot_id: str) -> Snapshot:
        return self._scoped(self._snapshots, "snapshot", account, region, snapshot_id)

    def _disk(self, account: str, region: str, disk_id: str) -> Disk:
        self._check_region(self._account(account), region)
        disk = self._disks.get(disk_id)
        inst = self._instances.get(disk.instance_id or "") if disk else None
        if disk is None or inst is None or inst.account != account or inst.region != region:
            raise CloudError("not_found", f"disk {disk_id} does not exist in {region}", resource="disk")
        return disk

    def _newest_first(
        self, table: dict[str, D], account: str, region: str, keep: Callable[[D], bool], *, seen: bool = False
    ) -> list[D]:
        """Copies of the entities of one account and region that ``keep`` accepts, newest first
        (ties: the most recently stored first). ``seen``: as a client's list sees them, without
        what the visibility lag still hides."""
        acc = self._account(account)
        self._check_region(acc, region)
        lag = self._lag_seconds(acc.provider) if seen else 0.0
        found = [
            e
            for e in reversed(table.values())
            if e.account == account
            and e.region == region
            and keep(e)
            and (not lag or (self._now - e.created_at).total_seconds() >= lag)
        ]
        found.sort(key=lambda e: e.created_at, reverse=True)
        return [self._out(entity) for entity in found]

    def _lag_seconds(self, provider: str) -> float:
        return self._lag.get(provider, self._lag.get(None, 0.0))

    # ---- idempotency ---------------------------------------------------------------------------

    def _idempotent(self, account: str, action: str, token: str | None, act: Callable[[], Made]) -> Made:
        """Return what (account, action, token) returned first, or ``act()`` and remember it."""
        self._account(account)
        if token:
            hit = self._idempotency.get((account, action, token))
            if hit is not None:
                return cast(Made, self._out(hit))
        result = act()
        if token:
            stored = (
                self._images.get(result.image_id)
                if isinstance(result, Image)
                else self._snapshots.get(result.snapshot_id)
            )
            if stored is not None:
                self._idempotency[(account, action, token)] = stored
        return result
