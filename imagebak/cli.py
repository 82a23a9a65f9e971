"""The command line: thin wrappers that load the config, call one module, and print.

Every anticipated failure is an ImagebakError with a one-line message and a documented exit
code; Click's own usage errors exit with 2. Vendor SDKs are imported only by commands that
talk to a cloud.
"""

from __future__ import annotations

import os
import sys

import click

from imagebak import __version__
from imagebak.commands import plan_cmd, policy_cmds, report_cmds, run_cmd
from imagebak.commands.context import AppContext
from imagebak.emulator.cli import emulator
from imagebak.errors import ConfigError, ImagebakError

INTERNAL_ERROR = 70


class ImagebakGroup(click.Group):
    """Maps anticipated failures to one line on stderr and their documented exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:  # already FILE:LINE:COL lines, which editors and CI can parse
            click.echo(str(exc), err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None
        except ImagebakError as exc:
            click.echo(f"imagebak: {exc}", err=True)
            raise click.exceptions.Exit(int(exc.exit_code)) from None


@click.group(cls=ImagebakGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="imagebak")
@click.option("-c", "--config", metavar="FILE", envvar="IMAGEBAK_CONFIG", show_envvar=True,
              help="Policy file.  [default: ./policies.yaml]")
@click.option("--state", metavar="FILE", envvar="IMAGEBAK_STATE", show_envvar=True,
              help="State file.  [default: the policy file's `state:` key, .imagebak/state.json]")
@click.pass_context
def cli(ctx: click.Context, config: str | None, state: str | None) -> None:
    """Scheduled VM images, copied to another region for cold disaster recovery."""
    ctx.obj = AppContext(config, state)


cli.add_command(policy_cmds.policy)
cli.add_command(plan_cmd.plan)
cli.add_command(run_cmd.run)
for _command in (report_cmds.status, report_cmds.history, report_cmds.check, report_cmds.images):
    cli.add_command(_command)
cli.add_command(emulator)


def main() -> None:
    """Entry point: Click handles usage errors (exit 2); a bug gets one line unless IMAGEBAK_DEBUG is set."""
    try:
        cli.main(prog_name="imagebak")
    except Exception as exc:
        if os.environ.get("IMAGEBAK_DEBUG"):
            raise
        click.echo(f"imagebak: internal error: {type(exc).__name__}: {exc} (set IMAGEBAK_DEBUG=1 for details)",
                   err=True)
        sys.exit(INTERNAL_ERROR)
