"""Fixtures for end-to-end `imagebak run` tests: one emulated cloud and policy file per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from world import VENDORS, World, open_world


@pytest.fixture(params=sorted(VENDORS))
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from open_world(VENDORS[request.param], tmp_path, monkeypatch)


@pytest.fixture
def world_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], World]]:
    """For tests about one vendor's specifics."""
    made: list[Iterator[World]] = []

    def make(vendor: str) -> World:
        generator = open_world(VENDORS[vendor], tmp_path / vendor, monkeypatch)
        made.append(generator)
        return next(generator)

    yield make
    for generator in made:
        next(generator, None)
