"""`imagebak run`: execute due policies (or the ones named), create -> wait -> copy, resumably."""

from __future__ import annotations

import shutil
import sys
import time

import click

from imagebak import engine
from imagebak.commands import monitoring
from imagebak.commands.connect import connected
from imagebak.commands.context import AppContext, pass_app
from imagebak.config.schema import parse_interval
from imagebak.engine import Note, RunOptions, RunReport, selected_names
from imagebak.errors import ExitCode, ImagebakError
from imagebak.execution.records import Execution
from imagebak.output import emit_json, format_option, table

EMULATOR_POLL_SECONDS = 0.2
CLOUD_POLL_SECONDS = 15.0


def _deadline(text: str) -> float:
    try:
        return parse_interval(text).total_seconds() if text[-1] in "hdw" else float(text)
    except (ValueError, IndexError):
        raise ImagebakError(f"--deadline {text!r}: give seconds (e.g. 900) or a span like 6h", ExitCode.USAGE) from None


@click.command()
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME",
    help="Run this policy now, due or not (repeatable). Respects the 12-hour floor unless --force.",
)
@click.option("--all", "all_policies", is_flag=True, help="Run every enabled policy now, due or not.")
@click.option("--instance", metavar="ID", help="Only this instance (of the named policy, or of its own policy).")
@click.option("--force", is_flag=True, help="Allow a manual run within 12 hours of the previous one.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the cloud calls a run would make, without making any (no credentials needed); nothing is written.",
)
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Stay until images and copies are available (default for manual runs), or submit, record and "
    "exit, leaving the next run to advance the work (default for scheduled runs).",
)
@click.option(
    "--deadline",
    default="6h",
    show_default=True,
    metavar="SPAN",
    help="With --wait: stop waiting after this long: seconds, or a span with unit h, d or w.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01, 3600),
    metavar="SECONDS",
    help="Seconds between status polls (sooner when an image or copy can have ended, at most 2 intervals "
    "when none can yet).  [default: 15, or 0.2 against the emulator]",
)
@format_option
@pass_app
def run(
    app: AppContext,
    policies: tuple[str, ...],
    all_policies: bool,
    instance: str | None,
    force: bool,
    dry_run: bool,
    wait: bool | None,
    deadline: str,
    poll_interval: float | None,
    fmt: str,
) -> None:
    """Create images for every due policy (or the ones named), wait for them, copy them to each destination.

    Unfinished work of earlier runs (a --no-wait run, a killed run) is picked up and finished first.
    """
    loaded = app.load()
    store = app.store(loaded)
    now = app.now()
    base = RunOptions(policies=policies, all_policies=all_policies, instance=instance, force=force)
    selected_names(loaded.model.policies, base)  # a typo in --policy fails before anything is touched
    if dry_run:
        executions, notes = engine.preview(loaded, store, base, now)
        _print_dry_run(executions, notes, fmt)
        return
    with connected(loaded) as connector:
        options = RunOptions(
            policies=policies,
            all_policies=all_policies,
            instance=instance,
            force=force,
            wait=base.manual if wait is None else wait,
            deadline_seconds=_deadline(deadline),
            poll_interval=poll_interval
            or (EMULATOR_POLL_SECONDS if connector.uses_only_emulator() else CLOUD_POLL_SECONDS),
            concurrency={n: a.concurrency for n, a in loaded.model.accounts.items() if a.concurrency},
        )
        progress = _progress_in_place if sys.stderr.isatty() and fmt == "text" else None
        started = time.time()
        monitoring.run_started(loaded)
        report = engine.run(loaded, store, options, connector.provider, app.now, progress=progress)
    if progress is not None:
        click.echo("\r\033[K", err=True, nl=False)  # clear the progress line
    monitoring.run_finished(loaded, store, report, started)
    _print_report(report, fmt)
    raise click.exceptions.Exit(int(report.exit_code()))


def _progress_in_place(line: str) -> None:
    """On a terminal: one line, rewritten on each pass."""
    width = shutil.get_terminal_size().columns - 1
    click.echo("\r\033[K" + line[:width], err=True, nl=False)


def _print_dry_run(executions: list[Execution], notes: list[Note], fmt: str) -> None:
    calls = []
    for execution in executions:
        policy = execution.policy
        where = f"{policy.account} {policy.region}"
        for work in execution.instances.values():
            iid = work.instance_id
            if work.image is None:
                calls += [
                    f"{where}: get instance {iid} and its disks",
                    f"{where}: read image quota",
                    f"{where}: create image of {iid} (disks: {_disks(policy.disks)})",
                ]
            calls.append(f"{where}: poll image of {iid} until available")
            calls += [f"{where}: copy image of {iid} to {dest}, then poll it there" for dest, _ in policy.copy_to]
    if fmt == "json":
        emit_json({"dry_run": True, "calls": calls, "notes": [n.to_json() for n in notes]})
        return
    click.echo(f"dry run: {len(executions)} execution(s), {len(calls)} cloud call group(s); nothing is changed")
    for call in calls:
        click.echo(f"  {call}")
    for note in notes:
        click.echo(f"  {note.policy}: not started ({note.kind.value}): {note.message}")


def _disks(disks: str | list[str]) -> str:
    return disks if isinstance(disks, str) else ",".join(disks)


def _print_report(report: RunReport, fmt: str) -> None:
    code = report.exit_code()
    if fmt == "json":
        emit_json(
            {
                "exit_code": int(code),
                "result": code.name.lower(),
                "deadline_hit": report.deadline_hit,
                "stalled": report.stalled,
                "pruned": [v.to_json() for v in report.pruned if not v.keep],
                "executions": [e.to_dict() for e in report.executions],
                "notes": [n.to_json() for n in report.notes],
            }
        )
        return
    rows = []
    for execution, work in report.works():
        copies = ", ".join(f"{c.region}:{c.image_id or c.state.value}" for c in work.copies.values()) or "-"
        image = (work.image.image_id or work.image.ref or "-") if work.image else "-"
        rows.append((execution.policy.name, work.instance_id, work.status.value, image, copies, work.reason))
    if rows:
        click.echo(table(("POLICY", "INSTANCE", "STATUS", "IMAGE", "COPIES", "NOTE"), rows))
    for note in report.notes:
        click.echo(f"{note.policy}: not started ({note.kind.value}): {note.message}")
    for line in report.stalled:
        click.echo(f"stalled: {line}")
    if not rows and not report.notes:
        click.echo("nothing due")
    click.echo(f"result: {code.name.lower().replace('_', ' ')} (exit {int(code)})")
