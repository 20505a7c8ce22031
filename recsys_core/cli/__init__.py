"""The command line: ``python -m recsys_core COMMAND`` (thin: parse, call services, print).

One Typer app (:mod:`recsys_core.cli.app`, with the options and helpers the commands share);
each command group lives in its own module and registers itself on ``app`` when imported here.
Errors a user can cause (:class:`~recsys_core.errors.RecsysError`) end with exit code 2 and
one plain message on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from recsys_core.cli import (  # noqa: F401
    answers,
    data,
    env,
    evaluate,
    merchandising,
    ops,
    security,
    serving,
    tune,
)
from recsys_core.cli.app import app
from recsys_core.cli.security import audit_command
from recsys_core.errors import RecsysError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (2 for errors a user can cause)."""
    try:
        audit_command(sys.argv[1:] if argv is None else argv)  # audit log hook
        app(args=argv, standalone_mode=True)
    except RecsysError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["app", "main"]
