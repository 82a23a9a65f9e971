"""What one ``imagebak run`` was asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunOptions:
    policies: tuple[str, ...] = ()  # run these now (manual)
    all_policies: bool = False  # run every enabled policy now (manual)
    instance: str | None = None  # narrow a manual run to one instance
    force: bool = False  # ignore the 12-hour floor of manual runs
    wait: bool = True
    deadline_seconds: float = 6 * 3600
    poll_interval: float = 15.0
    concurrency: dict[str, int] = field(default_factory=dict)  # per account

    @property
    def manual(self) -> bool:
        return bool(self.policies or self.all_policies or self.instance)
