"""Issue #13: a run with a long history writes as many state bytes as a run with none (bytes, never time).

Nightly runs on the fake cloud, with what the state store writes counted where it is written
(``state.json`` rewrites, history log appends and compactions). The history fills up (the journal
keeps 20 summaries) and recovery points accumulate, or retention prunes them every night: either
way what a run writes must not grow with what the state holds, and the log's compactions, which
come now and then, must each rewrite no more than was appended since the last one.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from harness import KEY, START, Harness
from samples import Writes

from imagebak.engine.journal import HISTORY_LENGTH
from imagebak.errors import ExitCode

NIGHTS = 3 * HISTORY_LENGTH
REGIONS = 3  # the harness policy's source and its two copy regions


def nightly(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Run the policy every night; per night, the bytes written in all, appended to the log, rewriting it."""
    writes = Writes(monkeypatch)
    nights = []
    for night in range(NIGHTS):
        h.clock.set(START + timedelta(days=night))
        total, appended, rewritten = writes.total(), sum(writes.appended), sum(writes.rewritten)
        assert h.run("nightly").exit_code() is ExitCode.OK, night
        nights.append((writes.total() - total, sum(writes.appended) - appended, sum(writes.rewritten) - rewritten))
    return nights


def test_a_run_writes_as_many_bytes_with_a_long_history_as_with_none(h: Harness, monkeypatch) -> None:
    nights = nightly(h, monkeypatch)
    entry = h.state()["policies"][KEY]
    assert len(entry["history"]) == HISTORY_LENGTH and len(entry["points"]) == REGIONS * NIGHTS
    empty = nights[0][0]  # no history, no points: its write creates the log
    assert [night for night, figures in enumerate(nights) if figures[2]] == [0]  # nothing dead to compact yet
    assert max(written for written, _, _ in nights) <= 1.10 * empty, nights


def test_with_retention_a_run_writes_the_same_every_night_and_compactions_are_amortised(h: Harness, monkeypatch):
    h.write_policies(h.policy(retain={"last": 3}))
    nights = nightly(h, monkeypatch)
    entry = h.state()["policies"][KEY]
    assert len(entry["history"]) == HISTORY_LENGTH and len(entry["points"]) == REGIONS * 3
    compacted = [night for night, figures in enumerate(nights) if figures[2]]
    steady = {figures for night, figures in enumerate(nights) if night >= HISTORY_LENGTH and night not in compacted}
    assert len(steady) == 1, nights  # a summary and its points in, the oldest summary and 3 points out: every night
    assert compacted[0] == 0 and len(compacted) >= 2, nights  # the log's creation, then once enough is dead
    for before, after in itertools.pairwise(compacted):
        appended = sum(appended for _, appended, _ in nights[before + 1 : after + 1])
        assert nights[after][2] <= appended  # no more than was appended since the last compaction
