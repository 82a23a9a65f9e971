"""The transition tables themselves: shape, reachability, illegal transitions, and the documented diagram."""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from imagebak.execution.records import Artifact, InstanceWork
from imagebak.execution.states import (
    ARTIFACT,
    WORK,
    ArtifactEvent,
    ArtifactState,
    IllegalTransition,
    Machine,
    WorkEvent,
    WorkStatus,
)

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "dev" / "architecture.md"
AnyMachine: TypeAlias = Machine[Any, Any]
Case: TypeAlias = tuple[AnyMachine, type[Enum], set[Enum]]  # machine, its events, its documented terminal states
MACHINES: dict[str, Case] = {
    "work": (WORK, WorkEvent, {WorkStatus.DONE, WorkStatus.FAILED, WorkStatus.SKIPPED}),
    "artifact": (ARTIFACT, ArtifactEvent, {ArtifactState.AVAILABLE, ArtifactState.FAILED, ArtifactState.SKIPPED}),
}


def states_of(machine: AnyMachine) -> list[Enum]:
    enum: type[Enum] = type(machine.initial)
    return list(enum)


def successors(machine: AnyMachine, state: Enum) -> set[Enum]:
    return {target for (source, _), target in machine.table.items() if source is state}


def reachable(machine: AnyMachine, start: Enum) -> set[Enum]:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in successors(machine, todo.popleft()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest) -> Case:
    return MACHINES[request.param]


def test_every_state_is_reachable_from_the_initial_state(machine: Case) -> None:
    table, _, _ = machine
    assert reachable(table, table.initial) == set(states_of(table))


def test_every_live_state_can_still_end(machine: Case) -> None:
    table, _, terminal = machine
    for state in set(states_of(table)) - terminal:
        assert reachable(table, state) & terminal, f"{state.value} can never reach a terminal state"


def test_terminal_states_are_the_documented_ones_and_have_no_way_out(
    machine: Case,
) -> None:
    table, events, terminal = machine
    assert table.terminal == terminal
    for state, event in itertools.product(terminal, events):
        assert not table.allows(state, event)
        with pytest.raises(IllegalTransition, match=f"from {state.value} on {event.value}"):
            table.fire(state, event)


def test_fire_follows_the_table_and_refuses_every_absent_pair(
    machine: Case,
) -> None:
    table, events, _ = machine
    states = states_of(table)
    refused = 0
    for state, event in itertools.product(states, events):
        if (state, event) in table.table:
            assert table.allows(state, event)
            assert table.fire(state, event) is table.table[(state, event)]
        else:
            refused += 1
            assert not table.allows(state, event)
            with pytest.raises(IllegalTransition):
                table.fire(state, event)
    assert refused == len(states) * len(events) - len(table.table)


def test_every_event_is_used_and_every_target_is_a_state(machine: Case) -> None:
    table, events, _ = machine
    assert {event for _, event in table.table} == set(events)
    assert all(isinstance(target, type(table.initial)) for target in table.table.values())


def test_live_work_can_always_be_skipped_or_failed() -> None:
    for state in (WorkStatus.NEW, WorkStatus.CREATING, WorkStatus.COPYING):
        assert WORK.fire(state, WorkEvent.SKIPPED) is WorkStatus.SKIPPED
        assert WORK.fire(state, WorkEvent.FAILED) is WorkStatus.FAILED


def test_the_happy_paths() -> None:
    work = InstanceWork("i-1")
    for event in (WorkEvent.PREPARED, WorkEvent.IMAGE_RETRY, WorkEvent.IMAGE_READY, WorkEvent.COPIES_SETTLED):
        work.fire(event)
    assert work.status is WorkStatus.DONE and work.terminal
    artifact = Artifact("k", "n", "r")
    for aevent in (ArtifactEvent.SUBMIT, ArtifactEvent.SUBMIT, ArtifactEvent.ACCEPTED, ArtifactEvent.POLLED):
        artifact.fire(aevent)
    assert (artifact.state, artifact.open) == (ArtifactState.PENDING, False)
    artifact.fire(ArtifactEvent.READY)
    assert (artifact.state, artifact.open) == (ArtifactState.AVAILABLE, False)


def test_records_refuse_illegal_events_and_keep_their_state() -> None:
    work = InstanceWork("i-1", status=WorkStatus.DONE)
    with pytest.raises(IllegalTransition):
        work.fire(WorkEvent.FAILED)
    assert work.status is WorkStatus.DONE
    artifact = Artifact("k", "n", "r")
    with pytest.raises(IllegalTransition):
        artifact.fire(ArtifactEvent.ACCEPTED)  # never without SUBMIT first
    assert artifact.state is ArtifactState.PLANNED


def test_mermaid_lists_every_transition_once(machine: Case) -> None:
    table, _, terminal = machine
    lines = table.mermaid().splitlines()
    assert lines[:2] == ["stateDiagram-v2", f"    [*] --> {table.initial.value}"]
    edges = [line for line in lines if ": " in line]
    assert len(edges) == len(set(edges)) == len(table.table)
    assert {line.strip() for line in lines if line.endswith("--> [*]")} == {f"{s.value} --> [*]" for s in terminal}


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_architecture_doc_shows_the_current_diagrams(name: str) -> None:
    assert ARCHITECTURE.is_file(), f"{ARCHITECTURE} is missing: it must show `python -m imagebak.execution.states`"
    table = MACHINES[name][0]
    assert table.mermaid() in ARCHITECTURE.read_text(encoding="utf-8"), (
        f"{ARCHITECTURE.name} shows an outdated {table.name} diagram; paste `python -m imagebak.execution.states`"
    )


def test_work_records_serialise_as_asdict_would_and_as_copies() -> None:
    """The journal's fast ``to_dict`` must write exactly what ``dataclasses.asdict`` wrote before it."""
    image = Artifact(key="k1", name="n", region="r", state=ArtifactState.AVAILABLE, extra_image_ids=["d-1"])
    copy = Artifact(key="k2", name="n", region="r2", source_image_id="i-1", progress=40)
    work = InstanceWork("i-web", WorkStatus.COPYING, devices=["vda"], image=image, copies={"r2/i-1": copy},
                        error={"code": "X", "kind": None}, leftovers=["i-0"])  # fmt: skip
    as_dict = work.to_dict()
    assert as_dict == asdict(work)
    assert InstanceWork.from_dict(json.loads(json.dumps(as_dict))) == work
    as_dict["image"]["extra_image_ids"].append("d-2")
    as_dict["devices"].append("vdb")
    as_dict["copies"]["r2/i-1"]["progress"] = 90
    assert (image.extra_image_ids, work.devices, copy.progress) == (["d-1"], ["vda"], 40)
