"""``imagebak emulator ...`` commands (attached to the main CLI with ``cli.add_command(emulator)``)."""

from __future__ import annotations

from pathlib import Path

import click

from imagebak.emulator.fixture import FixtureError
from imagebak.emulator.server import serve
from imagebak.errors import ExitCode


class EmulatorCommandError(click.ClickException):
    """One-line error with one of imagebak's documented exit codes (click reads it from the class)."""


class FixtureUnusable(EmulatorCommandError):
    exit_code = int(ExitCode.CONFIG)


class CannotListen(EmulatorCommandError):
    exit_code = int(ExitCode.CLOUD)


@click.group("emulator")
def emulator() -> None:
    """Local cloud emulator for Aliyun ECS, Huawei IMS and JD Cloud VM (127.0.0.1 only)."""


@emulator.command("serve")
@click.option(
    "--fixture",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fixture YAML (accounts, instances, quotas, latencies, faults). Default: the packaged demo fixture.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="TCP port; 0 picks a free one.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file keeping images, snapshots and jobs between runs (created if missing).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second, e.g. 600 makes a 10-minute image take 1 s.",
)
def serve_command(fixture: Path | None, port: int, state_path: Path | None, time_scale: float) -> None:
    """Serve the emulated clouds in the foreground until Ctrl-C, printing the endpoint and fake keys."""
    try:
        serve(fixture, port=port, state_path=state_path, time_scale=time_scale, echo=click.echo)
    except FixtureError as exc:
        raise FixtureUnusable(str(exc)) from None
    except OSError as exc:
        raise CannotListen(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
