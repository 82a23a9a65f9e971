"""`imagebak completion bash|zsh|fish`: Click's completion script, for the shell's startup file."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script: e.g. `eval "$(imagebak completion bash)"` in ~/.bashrc."""
    root = ctx.find_root()
    completer = get_completion_class(shell)
    assert completer is not None  # the three choices are Click's own
    click.echo(completer(root.command, {}, "imagebak", "_IMAGEBAK_COMPLETE").source())
