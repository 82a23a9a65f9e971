"""`imagebak prune`: apply the retention rules now (they also run at the end of every `imagebak run`)."""

from __future__ import annotations

import click

from imagebak import engine
from imagebak.commands.connect import connected
from imagebak.commands.context import AppContext, pass_app
from imagebak.output import emit_json, format_option, table


@click.command()
@click.option("--policy", "policies", multiple=True, metavar="NAME", help="Only this policy (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what would go and, for each survivor, the rule that keeps it.")
@click.option("--orphans", is_flag=True, help="Also prune policies gone from the file, down to their newest point.")
@format_option
@pass_app
def prune(app: AppContext, policies: tuple[str, ...], dry_run: bool, orphans: bool, fmt: str) -> None:
    """Delete recovery points no retention rule keeps: only images imagebak made, never the newest one.

    A policy without `retain` (and no file-wide default) keeps everything.
    """
    loaded = app.load()
    with connected(loaded) as connector:
        verdicts, left = engine.prune(
            loaded, app.store(loaded), connector.provider, app.now(), names=policies, dry_run=dry_run, orphans=orphans
        )
    if fmt == "json":
        emit_json({"dry_run": dry_run, "points": [v.to_json() for v in verdicts], "left_alone": left})
        return
    rows = [
        (
            v.policy,
            v.point["instance"],
            v.point["region"],
            v.point["run"],
            _action(v, dry_run),
            v.problem or ", ".join(v.reasons),
        )
        for v in verdicts
    ]
    click.echo(table(("POLICY", "INSTANCE", "REGION", "RUN", "ACTION", "WHY"), rows) if rows else "nothing to prune")
    for line in left:
        click.echo(f"left alone: {line}")


def _action(verdict: engine.Verdict, dry_run: bool) -> str:
    if verdict.keep:
        return "keep"
    return "would delete" if dry_run else ("deleted" if verdict.deleted else "kept")
