"""What every command shares: where the config and state are, and what time it is.

Cheap to import (the CLI creates an ``AppContext`` for every command, ``emulator`` included):
the config loader and the state store are imported when a command first asks for them.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from imagebak.errors import ExitCode, ImagebakError

if TYPE_CHECKING:
    from imagebak.config import LoadedConfig
    from imagebak.state import StateStore

NOW_ENV = "IMAGEBAK_NOW"  # rehearse: the run starts at this time and the clock runs on from it


def parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ImagebakError(
            f"{what}: {text!r} is not an ISO 8601 time such as 2026-12-01T02:00:00+08:00", ExitCode.USAGE
        ) from None
    if moment.tzinfo is None:
        raise ImagebakError(f"{what}: {text!r} needs a timezone offset, e.g. +08:00 or Z", ExitCode.USAGE)
    from imagebak.config.schema import EARLIEST_START, LATEST_START  # the range schedules are computed in

    if not EARLIEST_START <= moment < LATEST_START:
        raise ImagebakError(
            f"{what}: {text!r} is out of range ({EARLIEST_START.year} to {LATEST_START.year - 1})", ExitCode.USAGE
        )
    return moment


class AppContext:
    def __init__(self, config: str | None, state: str | None) -> None:
        self.config_arg = config
        self.state_arg = state
        self._started = time.monotonic()

    def load(self) -> LoadedConfig:
        from imagebak.config import load_config

        return load_config(self.config_arg)

    def store(self, loaded: LoadedConfig) -> StateStore:
        from imagebak.state import STATE_ENV, StateStore

        explicit = self.state_arg or os.environ.get(STATE_ENV)
        return StateStore(Path(explicit) if explicit else loaded.resolve(loaded.model.state))

    def now(self) -> datetime:
        """The real time, or (``--now`` / IMAGEBAK_NOW) that time plus what has elapsed since the start."""
        pinned = os.environ.get(NOW_ENV)
        if not pinned:
            return datetime.now(timezone.utc)
        return parse_time(pinned, NOW_ENV) + timedelta(seconds=time.monotonic() - self._started)


pass_app = click.make_pass_decorator(AppContext)
