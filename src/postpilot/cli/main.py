"""Entry point of the `postpilot` command. Each group lives in its own module."""

from __future__ import annotations

import typer

from postpilot.cli import sandbox_cmd

app = typer.Typer(
    name="postpilot",
    help="Publishes scheduled social-media posts fast and exactly once.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("sandbox")(sandbox_cmd.sandbox)


@app.callback()
def main() -> None:
    """Publishes scheduled social-media posts fast and exactly once."""


def run() -> None:
    app()


if __name__ == "__main__":
    run()
