"""Fixtures of the unit layer: the engine on a fake cloud (no HTTP, no SDK, a manual clock)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness

RAM = Path("/dev/shm")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """Where policy, state and log files go: in memory where the system has it.

    Every journal write renames the state file, and on a disk file system each rename over an
    existing file costs a flush (a millisecond or more); tmpfs makes it free. Same semantics.
    """
    if not (RAM.is_dir() and os.access(RAM, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="imagebak-unit-", dir=RAM))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def h(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(folder, monkeypatch)
