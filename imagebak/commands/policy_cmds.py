"""`imagebak policy validate | list | schema`."""

from __future__ import annotations

import json

import click

from imagebak.commands.context import AppContext, pass_app
from imagebak.config import config_path, validate_file
from imagebak.config.schema import json_schema
from imagebak.errors import ExitCode, one_line
from imagebak.output import emit_json, format_option, show_time, table


@click.group()
def policy() -> None:
    """Check, list and describe the policy file."""


@policy.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@format_option
@pass_app
def validate(app: AppContext, file: str | None, fmt: str) -> None:
    """Check FILE (default: the -c/--config file) and report every problem at once.

    Each problem is printed as FILE:LINE:COL: path.to.key: message. Exits 3 if there is any.
    """
    path = config_path(file or app.config_arg)
    model, diagnostics = validate_file(path)
    if fmt == "json":
        emit_json({"file": str(path), "valid": model is not None, "errors": [d.to_json() for d in diagnostics]})
    elif model is None:
        for diagnostic in diagnostics:
            click.echo(str(diagnostic))
        click.echo(one_line(f"{path}: {len(diagnostics)} problem(s)"), err=True)
    else:
        click.echo(one_line(f"{path}: OK ({len(model.accounts)} accounts, {len(model.policies)} policies)"))
    if model is None:
        raise click.exceptions.Exit(ExitCode.CONFIG)


@policy.command(name="list")
@format_option
@pass_app
def list_policies(app: AppContext, fmt: str) -> None:
    """List policies: account/region, enabled, interval, next run, instance count."""
    from imagebak.plan import build_plan  # the state and the schedule rules: not needed to validate

    loaded = app.load()
    entries = build_plan(loaded.model, app.store(loaded).read(), app.now())
    if fmt == "json":
        emit_json([entry.to_json() for entry in entries])
        return
    rows = [
        (
            e.policy.name,
            f"{e.policy.account}/{e.policy.region}",
            "yes" if e.policy.enabled else "no",
            e.policy.every,
            show_time(e.schedule.due_at) if e.policy.enabled else "-",
            len(e.policy.instances),
            ",".join(t.region for t in e.policy.copy_to) or "-",
        )
        for e in entries
    ]
    click.echo(table(("POLICY", "ACCOUNT/REGION", "ENABLED", "EVERY", "NEXT RUN", "INSTANCES", "COPY TO"), rows))


@policy.command()
def schema() -> None:
    """Print the policy file's JSON Schema (for editors and CI)."""
    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))
