"""`imagebak policy validate | list | schema`, and the verbs that edit the policy file:
`create | enable | disable | attach | detach | copy | delete | edit`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from imagebak.commands.context import AppContext, parse_time, pass_app
from imagebak.config import config_path, validate_file
from imagebak.config.schema import json_schema
from imagebak.errors import ExitCode, one_line
from imagebak.output import emit_json, format_option, show_time, table

if TYPE_CHECKING:  # the editor loads ruamel.yaml: imported when a verb runs
    from types import ModuleType

    from imagebak.config.edit import PolicyDocument
    from imagebak.config.edit.verbs import Settings, Target

    Change = Callable[[PolicyDocument], str | list[str]]
    Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@click.group()
def policy() -> None:
    """Check, list, describe and edit the policy file."""


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


# -- policy management without hand-editing YAML ---------------------------------------------------
# Each verb edits the policy file in place (comments, order and layout kept), validates the result
# exactly as `policy validate` does, refuses to write it if it is invalid (exit 3), writes it
# atomically and prints the diff.


def _verbs() -> ModuleType:
    from imagebak.config.edit import verbs

    return verbs


def _edits_one_policy(
    *options: Decorator, instances: bool = False, name: str | None = None
) -> Callable[[Callable[..., Change]], Any]:
    """A verb on policy NAME [INSTANCES...] with ``options``: --account/--region pick the policy where
    NAME is in several places.

    The decorated function gets the policy as a ``Target`` (and the values of ``options``) and returns
    the change to make; the command applies it to the file (``--dry-run``: prints it only).
    """

    def decorate(function: Callable[..., Change]) -> Any:
        @click.pass_obj
        @functools.wraps(function)
        def command(
            app: AppContext, name: str, account: str | None, region: str | None, dry_run: bool, **options: Any
        ) -> None:
            _change_file(app, dry_run, function(_verbs().Target(name, account, region), **options))

        command = _options(*options)(dry_run_option(command))
        command = click.option("--region", metavar="REGION", help="The policy's region, if NAME is in several.")(
            command
        )
        command = click.option("--account", metavar="ACCOUNT", help="The policy's account, if NAME is in several.")(
            command
        )
        if instances:
            command = click.argument("instances", nargs=-1, required=True)(command)
        return policy.command(name=name)(click.argument("name")(command))

    return decorate


dry_run_option = click.option("--dry-run", is_flag=True, help="Print the diff only; write nothing.")


def _options(*options: Decorator) -> Decorator:
    """One decorator for several click options; help lists them in this order."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _settings_options(*, create: bool) -> list[Decorator]:
    """The policy's settings as options: required ones for `create`, "" removes a key for `edit`."""
    options: list[Decorator] = [
        click.option("--every", required=create, metavar="SPAN", help="Interval: h, d or w, 12h to 365d (e.g. 1d)."),
        click.option(
            "--start",
            required=create,
            metavar="TIME",
            help="First run, ISO 8601 with an offset (2026-12-01T02:00+08:00).",
        ),
        click.option("--disks", metavar="all|DEV,DEV", help="'all' (every cloud disk) or devices, with vda."),
        click.option(
            "--copy-to", metavar="REGION[:VAULT],...", help="DR copy destinations (Huawei whole images: REGION:VAULT)."
        ),
        click.option("--description", metavar="TEXT", help="At most 256 characters."),
        click.option("--image-name", metavar="TEMPLATE", help="Fields {policy}, {instance}, {time}, {region}."),
        click.option("--retry-failed", type=int, metavar="N", help="Re-create a failed image up to N times (0-5)."),
        click.option("--vault", metavar="ID", help="Huawei whole-machine images: the source region's CBR vault."),
        click.option("--retain-last", type=int, metavar="N", help="Keep the N newest recovery points."),
        click.option("--retain-within", metavar="SPAN", help="Keep every point younger than SPAN (e.g. 30d)."),
        click.option("--retain-daily", type=int, metavar="N", help="Keep the newest point of each of the last N days."),
        click.option("--retain-weekly", type=int, metavar="N", help="... of each of the last N weeks."),
        click.option("--retain-monthly", type=int, metavar="N", help="... of each of the last N months."),
        click.option("--retain-yearly", type=int, metavar="N", help="... of each of the last N years."),
    ]
    if not create:
        options.append(
            click.option("--no-retain", is_flag=True, help="Drop the policy's retain: (the file's default applies).")
        )
    return options


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _settings(options: dict[str, Any]) -> Settings:
    settings = _verbs().Settings(
        every=options["every"],
        description=options["description"],
        image_name=options["image_name"],
        retry_failed=options["retry_failed"],
        vault=options["vault"],
        no_retain=options.get("no_retain", False),
    )
    if options["start"] is not None:
        settings.start = parse_time(options["start"], "--start").isoformat()
    if options["disks"] is not None:
        settings.disks = _split(options["disks"])
        if not settings.disks:
            raise click.BadParameter("give 'all' or device names such as vda,vdb", param_hint="--disks")
    if options["copy_to"] is not None:
        settings.copy_to = [_copy_target(part) for part in _split(options["copy_to"])]
    for key in ("last", "within", "daily", "weekly", "monthly", "yearly"):
        if options[f"retain_{key}"] is not None:
            settings.retain[key] = options[f"retain_{key}"]
    if settings.no_retain and settings.retain:
        raise click.UsageError("--no-retain cannot be combined with --retain-* options")
    return settings


def _copy_target(text: str) -> tuple[str, str | None]:
    region, colon, vault = (part.strip() for part in text.partition(":"))
    if not region or (colon and not vault):
        raise click.BadParameter(f"{text!r}: expected REGION or REGION:VAULT", param_hint="--copy-to")
    return region, vault or None


def _change_file(app: AppContext, dry_run: bool, change: Change) -> None:
    """Apply ``change`` to the policy file; print the diff; write it only if it validates."""
    from imagebak.config.edit import edit_policy_file

    path = config_path(app.config_arg)
    outcome = edit_policy_file(path, change)
    if not outcome.changed:
        for note in outcome.notes:
            click.echo(one_line(note))
        click.echo(one_line(f"{path}: nothing to change"))
        return
    click.echo(outcome.diff(), nl=False)
    if outcome.diagnostics:
        for diagnostic in outcome.diagnostics:
            click.echo(str(diagnostic), err=True)
        summary = f"{path}: not written: the result would have {len(outcome.diagnostics)} problem(s)"
        click.echo(one_line(f"{summary} (lines as in the diff's new side)"), err=True)
        raise click.exceptions.Exit(ExitCode.CONFIG)
    for note in outcome.notes:
        click.echo(one_line(note))
    if dry_run:
        click.echo(one_line(f"{path}: dry run, nothing written"))
        return
    outcome.write()
    click.echo(one_line(f"{path}: written"))


@policy.command()
@click.argument("name")
@click.option("--account", required=True, metavar="ACCOUNT", help="An account under `accounts:`.")
@click.option("--region", required=True, metavar="REGION", help="Region of the instances.")
@_options(*_settings_options(create=True))
@click.option("--instances", metavar="ID,ID", help="Its instances (one in another policy is refused: attach moves).")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@dry_run_option
@pass_app
def create(
    app: AppContext,
    name: str,
    account: str,
    region: str,
    instances: str | None,
    disabled: bool,
    dry_run: bool,
    **options: Any,
) -> None:
    """Add policy NAME to the policy file."""
    settings = _settings(options)
    members = _split(instances or "")
    _change_file(
        app,
        dry_run,
        lambda doc: _verbs().create(doc, name, account, region, settings, instances=members, enabled=not disabled),
    )


@_edits_one_policy()
def enable(target: Target) -> Change:
    """Enable policy NAME: it runs from its next slot on (missed slots are not caught up)."""
    return lambda doc: _verbs().set_enabled(doc, target, True)


@_edits_one_policy()
def disable(target: Target) -> Change:
    """Disable policy NAME: it no longer runs on schedule (images in flight still finish)."""
    return lambda doc: _verbs().set_enabled(doc, target, False)


@_edits_one_policy(instances=True)
def attach(target: Target, instances: tuple[str, ...]) -> Change:
    """Add INSTANCES to policy NAME; an instance in another policy moves (it leaves that one)."""
    return lambda doc: _verbs().attach(doc, target, instances)


@_edits_one_policy(instances=True)
def detach(target: Target, instances: tuple[str, ...]) -> Change:
    """Remove INSTANCES from policy NAME."""
    return lambda doc: _verbs().detach(doc, target, instances)


@_edits_one_policy(
    click.option("--to-region", required=True, metavar="REGION", help="Where the copy goes (same account)."),
    click.option("--instances", metavar="ID,ID", help="Instances of the copy (default: none; they are regional)."),
    click.option("--vault", metavar="ID", help="Huawei whole-machine images: the CBR vault in the new region."),
    name="copy",
)
def copy_policy(target: Target, to_region: str, instances: str | None, vault: str | None) -> Change:
    """Copy policy NAME to another region of its account: same name and settings, no instances."""
    members = _split(instances or "") or None
    return lambda doc: _verbs().copy(doc, target, to_region, members, vault or None)


@_edits_one_policy()
def delete(target: Target) -> Change:
    """Delete policy NAME (images in flight still finish)."""
    return lambda doc: _verbs().delete(doc, target)


@_edits_one_policy(*_settings_options(create=False))
def edit(target: Target, **options: Any) -> Change:
    """Change settings of policy NAME; an empty value ("") removes a key (back to its default)."""
    settings = _settings(options)
    if settings == _verbs().Settings():
        raise click.UsageError("nothing to change: give at least one setting, e.g. --every 2d")
    return lambda doc: _verbs().edit(doc, target, settings)
