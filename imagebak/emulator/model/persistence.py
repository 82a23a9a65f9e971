"""The model as JSON: ``to_dict``/``from_dict`` for the whole model, ``load_dynamic_state`` for a state file.

Owns the state format (``STATE_VERSION``). A state file holds what happened (images, snapshots,
tasks, idempotency records, pending failures, the RNG); the world (accounts, instances, quotas,
latencies) comes from the fixture. Loading parses and checks everything before it replaces
anything, so a bad file leaves the model as it was.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from imagebak.emulator.clock import Clock
from imagebak.emulator.model.accounts import AccountsMixin
from imagebak.emulator.model.base import InFlight, Placed, synced
from imagebak.emulator.model.entities import (
    Account,
    CloudError,
    Image,
    Instance,
    Snapshot,
    Task,
    entity_from_json,
    entity_to_json,
)
from imagebak.emulator.model.quotas import QuotasMixin
from imagebak.emulator.rules import Latency

STATE_VERSION = 1

M = TypeVar("M", bound="PersistenceMixin")


@dataclass(frozen=True)
class _DynamicState:
    """A parsed state file, not yet applied."""

    images: list[Image]
    snapshots: list[Snapshot]
    tasks: list[Task]
    tokens: list[tuple[Any, Any, Any, Any]]  # (account, action, token, image or snapshot id)
    fail_next: list[Any]
    rng_state: tuple[Any, ...] | None
    saved_at: datetime | None


def _parse_dynamic_state(data: dict[str, Any]) -> _DynamicState:
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported state version {data.get('version')!r} (expected {STATE_VERSION})")
    try:
        rng = data.get("rng_state")
        rng_state = None if rng is None else (rng[0], tuple(rng[1]), rng[2])
        if rng_state is not None:
            random.Random().setstate(rng_state)  # a malformed state raises here, not half-way through loading
        tokens = [(acc, action, token, entity) for acc, action, token, entity in data.get("idempotency", [])]
        return _DynamicState(
            images=[entity_from_json(Image, d) for d in data.get("images", [])],
            snapshots=[entity_from_json(Snapshot, d) for d in data.get("snapshots", [])],
            tasks=[entity_from_json(Task, d) for d in data.get("tasks", [])],
            tokens=tokens,
            fail_next=list(data.get("fail_next", [])),
            rng_state=rng_state,
            saved_at=datetime.fromisoformat(data["saved_at"]) if data.get("saved_at") else None,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"invalid model state: {exc}") from None


class PersistenceMixin(AccountsMixin, QuotasMixin):
    @synced
    def to_dict(self) -> dict[str, Any]:
        """The whole model as JSON-serialisable data (secrets included: they are fixture fakes)."""
        return {
            "version": STATE_VERSION,
            "saved_at": self._now.isoformat(),
            "seed": self.seed,
            "accounts": [entity_to_json(a) for a in self._accounts.values()],
            "instances": [entity_to_json(i) for i in self._instances.values()],
            "latency": [{"provider": p, "op": op, **asdict(lat)} for (p, op), lat in self._latency.items()],
            "quota_limits": [[*k, v] for k, v in self._quota_limits.items()],
            **self._dynamic_state(),
        }

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any], clock: Clock | None = None) -> M:
        try:
            model = cls(clock, seed=int(data.get("seed", 0)))
            for acc in data["accounts"]:
                model.add_account(entity_from_json(Account, acc))
            for inst in data["instances"]:
                model._instances[inst["instance_id"]] = built = entity_from_json(Instance, inst)
                model._disks.update((d.disk_id, d) for d in built.disks)
            for lat in data.get("latency", []):
                model.set_latency(
                    lat["provider"],
                    lat["op"],
                    Latency(lat["base_seconds"], lat["per_gb_seconds"], lat["jitter"]),
                )
            for account, region, resource, limit in data.get("quota_limits", []):
                model.set_quota(account, region, resource, int(limit))
        except (KeyError, TypeError, ValueError, CloudError) as exc:
            raise ValueError(f"invalid model state: {exc}") from None
        model.load_dynamic_state(data)
        return model

    def load_dynamic_state(self, data: dict[str, Any]) -> None:
        """Replace images, snapshots, tasks, idempotency records and pending failures with saved ones.

        The world (accounts, regions, instances, quotas, latencies) stays as built: entities of
        accounts or regions that no longer exist are dropped. The clock moves forward to the save
        time if it is behind. A state that cannot be parsed raises ValueError and changes nothing.
        """
        state = _parse_dynamic_state(data)
        with self.lock:
            if state.saved_at is not None:
                self.clock.ensure_not_before(state.saved_at)
            self._images = Placed({i.image_id: i for i in state.images if self._known(i)})
            self._snapshots = Placed({s.snapshot_id: s for s in state.snapshots if self._known(s)})
            self._tasks = {t.task_id: t for t in state.tasks if self._known(t)}
            self._pending = InFlight(
                [
                    *(i.image_id for i in self._images.values() if i.status == "creating"),
                    *(s.snapshot_id for s in self._snapshots.values() if s.status == "progressing"),
                ]
            )
            self._idempotency = {}
            for acc_name, action, token, entity_id in state.tokens:
                entity = self._images.get(entity_id) or self._snapshots.get(entity_id)
                if entity is not None:
                    self._idempotency[(acc_name, action, token)] = entity
            self._fail_next = list(state.fail_next)
            if state.rng_state is not None:
                self._rng.setstate(state.rng_state)
            self._refresh()

    def _known(self, entity: Image | Snapshot | Task) -> bool:
        acc = self._accounts.get(entity.account)
        return acc is not None and entity.region in acc.regions

    def _dynamic_state(self) -> dict[str, Any]:
        rng_state = self._rng.getstate()
        return {
            "images": [entity_to_json(i) for i in self._images.values()],
            "snapshots": [entity_to_json(s) for s in self._snapshots.values()],
            "tasks": [entity_to_json(t) for t in self._tasks.values()],
            "idempotency": [
                [*key, entity.image_id if isinstance(entity, Image) else entity.snapshot_id]
                for key, entity in self._idempotency.items()
            ],
            "fail_next": list(self._fail_next),
            "rng_state": [rng_state[0], list(rng_state[1]), rng_state[2]],
        }
