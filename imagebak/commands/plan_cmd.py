"""`imagebak plan`: what is due at a moment, and why. Never writes anything."""

from __future__ import annotations

import click

from imagebak.commands.context import AppContext, parse_time, pass_app
from imagebak.output import emit_json, format_option, show_time, table
from imagebak.plan import build_plan


@click.command()
@click.option("--at", "at", metavar="TIME", help="Evaluate at this ISO 8601 time (with offset) instead of now.")
@format_option
@pass_app
def plan(app: AppContext, at: str | None, fmt: str) -> None:
    """Show which policies are due now (or --at TIME), why, and when each runs next."""
    loaded = app.load()
    now = parse_time(at, "--at") if at else app.now()
    entries = build_plan(loaded.model, app.store(loaded).read(), now, seen=app.now())
    if fmt == "json":
        emit_json({"at": now.isoformat(), "policies": [entry.to_json() for entry in entries]})
        return
    due = [e for e in entries if e.due]
    click.echo(f"At {show_time(now)}: {len(due)} of {len(entries)} policies due.")
    if entries:
        rows = [
            (
                e.policy.name,
                f"{e.policy.account}/{e.policy.region}",
                "DUE" if e.due else "-",
                show_time(e.schedule.due_at) if e.policy.enabled else "-",
                len(e.policy.instances),
                e.reason,
            )
            for e in entries
        ]
        click.echo(table(("POLICY", "ACCOUNT/REGION", "DUE", "NEXT RUN", "INSTANCES", "WHY"), rows))
