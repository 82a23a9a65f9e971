"""The client tests' emulator: the test module's ``FIXTURE`` world, served on 127.0.0.1 with a ManualClock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagebak.emulator.server import EmulatorHandle


@pytest.fixture
def served(request: pytest.FixtureRequest, emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(request.module.FIXTURE)
