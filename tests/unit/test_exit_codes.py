"""Every rule of ``RunReport.exit_code``: through the engine, then the precedence between rules."""

from __future__ import annotations

import pytest
from harness import IMAGE_SECONDS, KEY, MISSING, WEB, Harness, only_work

from imagebak.engine import RunReport
from imagebak.engine.locks import PolicyLocks
from imagebak.engine.selection import Note
from imagebak.errors import ExitCode
from imagebak.execution.records import Execution, InstanceWork, PolicySnapshot
from imagebak.execution.states import ArtifactState, NoteKind, Outcome, WorkStatus


def test_success_is_0(h: Harness) -> None:
    report = h.run("nightly")
    assert only_work(report).status is WorkStatus.DONE
    assert report.exit_code() is ExitCode.OK


def test_nothing_due_is_0(h: Harness) -> None:
    report = h.run()
    assert report.executions == [] and report.notes == []
    assert report.exit_code() is ExitCode.OK and h.provider.calls.total() == 0


def test_some_failed_and_some_done_is_1(h: Harness) -> None:
    h.write_policies(h.policy(instances=[WEB, MISSING], copy_to=[]))
    report = h.run("nightly")
    works = report.executions[0].instances
    assert (works[WEB].status, works[MISSING].status) == (WorkStatus.DONE, WorkStatus.FAILED)
    assert report.exit_code() is ExitCode.PARTIAL_FAILURE


def test_some_failed_and_some_in_progress_is_1(h: Harness) -> None:
    h.write_policies(h.policy(instances=[WEB, MISSING], copy_to=[]))
    report = h.run("nightly", wait=False)
    works = report.executions[0].instances
    assert (works[WEB].status, works[MISSING].status) == (WorkStatus.CREATING, WorkStatus.FAILED)
    assert report.exit_code() is ExitCode.PARTIAL_FAILURE


def test_deadline_passed_with_work_in_flight_is_11_and_the_next_run_finishes(h: Harness) -> None:
    report = h.run("nightly", deadline_seconds=IMAGE_SECONDS / 2)
    work = only_work(report)
    assert report.deadline_hit
    assert work.status is WorkStatus.CREATING and work.image is not None
    assert work.image.state is ArtifactState.PENDING
    assert report.exit_code() is ExitCode.IN_FLIGHT  # nothing failed: not a partial failure
    again = h.run()
    assert only_work(again).status is WorkStatus.DONE and again.exit_code() is ExitCode.OK
    assert h.calls("create_image") == 1


def test_no_wait_with_work_in_flight_is_0(h: Harness) -> None:
    report = h.run("nightly", wait=False)
    assert only_work(report).status is WorkStatus.CREATING and not report.deadline_hit
    assert report.exit_code() is ExitCode.OK


def test_every_instance_failed_is_6(h: Harness) -> None:
    h.write_policies(h.policy(instances=[MISSING]))
    assert h.run("nightly").exit_code() is ExitCode.TOTAL_FAILURE


def test_skipped_for_quota_is_7(h: Harness) -> None:
    h.model.set_quota("acct", "cn-shanghai", "snapshot", 1)  # the image needs two snapshots
    report = h.run("nightly")
    assert only_work(report).status is WorkStatus.SKIPPED and "snapshot quota" in only_work(report).reason
    assert report.exit_code() is ExitCode.QUOTA


def test_policy_locked_by_another_process_is_5(h: Harness) -> None:
    other = PolicyLocks(h.folder / "locks")  # another process: its own open file description
    assert other.acquire(KEY)
    try:
        report = h.run("nightly")
    finally:
        other.release_all()
    assert report.executions == []
    assert [(n.policy, n.kind) for n in report.notes] == [("nightly", NoteKind.LOCKED)]
    assert report.exit_code() is ExitCode.LOCKED
    assert h.provider.calls.total() == 0
    assert h.run("nightly").exit_code() is ExitCode.OK  # released: the next run goes ahead


def test_execution_in_flight_locked_by_another_process_is_5(h: Harness) -> None:
    h.run("nightly", wait=False)
    other = PolicyLocks(h.folder / "locks")
    assert other.acquire(KEY)
    try:
        report = h.run()
    finally:
        other.release_all()
    assert report.executions == [] and report.exit_code() is ExitCode.LOCKED


def test_manual_run_within_12_hours_is_9_unless_forced(h: Harness) -> None:
    assert h.run("nightly").exit_code() is ExitCode.OK
    h.clock.advance(11 * 3600)
    report = h.run("nightly")
    assert report.executions == [] and [n.kind for n in report.notes] == [NoteKind.TOO_SOON]
    assert "--force overrides" in report.notes[0].message
    assert report.exit_code() is ExitCode.TOO_SOON
    assert h.calls("create_image") == 1
    assert h.run("nightly", force=True).exit_code() is ExitCode.OK
    assert h.calls("create_image") == 2


def test_manual_run_after_12_hours_is_not_too_soon(h: Harness) -> None:
    assert h.run("nightly").exit_code() is ExitCode.OK
    h.clock.advance(12 * 3600)
    assert h.run("nightly").exit_code() is ExitCode.OK
    assert h.calls("create_image") == 2


# ---- precedence: the rules in the order exit_code applies them --------------------------------


def execution(*statuses: WorkStatus, outcome: Outcome | None = None) -> Execution:
    policy = PolicySnapshot("p", "acct", "cn-shanghai", "all", [], "{policy}", "", 1)
    works = {}
    for n, status in enumerate(statuses):
        error = {"outcome": outcome.value} if outcome and status is WorkStatus.SKIPPED else None
        works[f"i-{n}"] = InstanceWork(f"i-{n}", status=status, error=error)
    return Execution("k", "run", True, "2024-01-01T00:00:00+00:00", policy, works)


def note(kind: NoteKind) -> Note:
    return Note("other", kind, kind.value)


D, F, S, C = WorkStatus.DONE, WorkStatus.FAILED, WorkStatus.SKIPPED, WorkStatus.CREATING
Q = Outcome.QUOTA_SKIP


@pytest.mark.parametrize(
    ("statuses", "outcome", "notes", "deadline", "code"),
    [
        ((F,), None, [note(NoteKind.LOCKED)], True, ExitCode.TOTAL_FAILURE),  # failures first
        ((F, S), Q, [], False, ExitCode.TOTAL_FAILURE),  # a skipped instance is no success
        ((F, D), None, [note(NoteKind.LOCKED)], False, ExitCode.PARTIAL_FAILURE),
        ((F, C), None, [], False, ExitCode.PARTIAL_FAILURE),
        ((C, S), Q, [note(NoteKind.LOCKED)], True, ExitCode.IN_FLIGHT),  # the deadline before quota
        ((C, S), Q, [], False, ExitCode.QUOTA),  # without the deadline, quota
        ((D, S), Q, [note(NoteKind.LOCKED), note(NoteKind.TOO_SOON)], False, ExitCode.QUOTA),  # quota before locks
        ((D, S), Outcome.SKIPPED, [], False, ExitCode.OK),  # a skip that is not about quota
        ((D,), None, [note(NoteKind.LOCKED), note(NoteKind.TOO_SOON)], False, ExitCode.LOCKED),
        ((D,), None, [note(NoteKind.TOO_SOON)], False, ExitCode.OK),  # too soon only when nothing else ran
        ((), None, [note(NoteKind.TOO_SOON)], False, ExitCode.TOO_SOON),
        ((), None, [note(NoteKind.BUSY)], False, ExitCode.OK),
        ((), None, [], True, ExitCode.OK),
        ((D, S), Outcome.COPY_IMPOSSIBLE, [note(NoteKind.ACCOUNT)], False, ExitCode.NO_DR_COPY),  # before accounts
        ((D,), None, [note(NoteKind.ACCOUNT), note(NoteKind.LOCKED)], False, ExitCode.ACCOUNT),  # before locks
        ((C,), None, [note(NoteKind.ACCOUNT)], True, ExitCode.IN_FLIGHT),
    ],
)
def test_precedence(
    statuses: tuple[WorkStatus, ...], outcome: Outcome | None, notes: list[Note], deadline: bool, code: ExitCode
) -> None:
    executions = [execution(*statuses, outcome=outcome)] if statuses else []
    assert RunReport(executions, notes, deadline).exit_code() is code


@pytest.mark.parametrize(("statuses", "code"), [((C,), ExitCode.STALLED), ((F, C), ExitCode.PARTIAL_FAILURE)])
def test_a_stall_comes_right_after_failures(statuses: tuple[WorkStatus, ...], code: ExitCode) -> None:
    report = RunReport([execution(*statuses)], [note(NoteKind.LOCKED)], True, ["nightly: no progress for 25 h"])
    assert report.exit_code() is code
