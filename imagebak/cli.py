"""The command line: thin wrappers that load the config, call one module, and print.

Every anticipated failure is an ImagebakError with a one-line message and a documented exit
code; Click's own usage errors exit with 2. Each command's module is imported only when that
command runs, so ``imagebak --help`` imports no command, ``policy validate`` and ``plan`` import
neither the engine nor the emulator, and vendor SDKs load only when a command talks to a cloud.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from imagebak import __version__, logs
from imagebak.errors import ConfigError, ImagebakError, one_line

INTERNAL_ERROR = 70

# name -> (module:attribute, the one-line summary `imagebak --help` lists without importing it)
COMMANDS = {
    "emulator": ("imagebak.emulator.cli:emulator", "Local cloud emulator for Aliyun ECS, Huawei IMS and JD Cloud VM."),
    "plan": ("imagebak.commands.plan_cmd:plan", "Show which policies are due now (or --at TIME), and why."),
    "policy": (
        "imagebak.commands.policy_cmds:policy",
        "Check, list and edit the policy file (create, attach, copy...).",
    ),
    "run": ("imagebak.commands.run_cmd:run", "Create due images, wait for them, copy them to other regions."),
    "status": ("imagebak.commands.report_cmds:status", "Per policy: the last run, work in flight, the next run."),
    "history": ("imagebak.commands.report_cmds:history", "Past executions, one line each."),
    "check": ("imagebak.commands.report_cmds:check", "Is every recovery point fresh? (a Nagios/Icinga plugin)"),
    "images": ("imagebak.commands.report_cmds:images", "Every recovery point, from the cloud and the state."),
    "prune": ("imagebak.commands.prune_cmd:prune", "Delete recovery points no retention rule keeps."),
    "completion": (
        "imagebak.commands.completion_cmd:completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
    "doctor": (
        "imagebak.commands.doctor_cmd:doctor",
        "Check the set-up before the first cron tick; --connect also asks the clouds.",
    ),
}


class ImagebakGroup(click.Group):
    """Loads each command on first use; maps anticipated failures to one line and their exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, COMMANDS[name][1] if name in COMMANDS else self.commands[name].get_short_help_str())
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:  # already FILE:LINE:COL lines, which editors and CI can parse
            click.echo(str(exc), err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None
        except ImagebakError as exc:
            click.echo(f"imagebak: {one_line(str(exc))}", err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None


@click.group(cls=ImagebakGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="imagebak")
@click.option(
    "-c",
    "--config",
    metavar="FILE",
    envvar="IMAGEBAK_CONFIG",
    show_envvar=True,
    help="Policy file.  [default: ./policies.yaml]",
)
@click.option(
    "--state",
    metavar="FILE",
    envvar="IMAGEBAK_STATE",
    show_envvar=True,
    help="State file.  [default: the policy file's `state:` key, .imagebak/state.json]",
)
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv: also the vendor SDKs').")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option(
    "--tz",
    metavar="ZONE",
    envvar="IMAGEBAK_TZ",
    show_envvar=True,
    help="Show times in this zone (Asia/Shanghai, UTC).  [default: the machine's local zone]",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, state: str | None, verbose: int, quiet: bool, tz: str | None) -> None:
    """Scheduled VM images, copied to another region for cold disaster recovery.

    No command prints color, so NO_COLOR is always respected.
    """
    from imagebak.commands.context import AppContext
    from imagebak.output import set_zone

    logs.configure(-1 if quiet else verbose)
    set_zone(tz)
    ctx.obj = AppContext(config, state)


def main() -> None:
    """Entry point: Click handles usage errors (exit 2); a bug gets one line unless IMAGEBAK_DEBUG is set."""
    try:
        cli.main(prog_name="imagebak")
    except Exception as exc:
        if os.environ.get("IMAGEBAK_DEBUG"):
            raise
        click.echo(
            f"imagebak: internal error: {type(exc).__name__}: {one_line(str(exc))} (set IMAGEBAK_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(INTERNAL_ERROR)
