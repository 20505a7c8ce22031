"""Security commands: ``users add|list|remove|passwd|role``, ``audit verify|export``, ``forget``.

Passwords are read from a hidden prompt (asked twice) or, with ``--password-stdin``, from the
first line of standard input -- never from an argument, which would end up in shell history
and the process list. Every change is written to the audit log with the OS user as actor.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from recsys_core.cli.app import app, echo_json
from recsys_core.errors import ConfigError

users_app = typer.Typer(help="Users and roles of the app (viewer, analyst, admin).")
audit_app = typer.Typer(help="The tamper-evident audit log.")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """A password from stdin's first line or a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass(f"{prompt}: ")
    second = getpass.getpass(f"{prompt} (again): ")
    if first != second:
        raise ConfigError("the two passwords differ; nothing was changed")
    return first


#: Commands whose every run is written to the audit log (what was done, with which data);
#: user, audit, keys and forget commands record their own, more precise events.
AUDITED_COMMANDS = frozenset(
    {"train", "evaluate", "report", "recommend", "explain", "batch", "tune", "registry", "serve"}
)


def audit_command(argv: list[str]) -> None:
    """Record one audited CLI command: its name and options, shopper ids as pseudonyms and
    data files by name only. Called by :func:`recsys_core.cli.main` before the command runs."""
    words = [a for a in argv if a]
    command = next((a for a in words if not a.startswith("-")), None)
    if command not in AUDITED_COMMANDS:
        return
    from recsys_core.security.pseudonyms import pseudonym

    shown: list[str] = []
    previous = ""
    for word in words:
        if previous == "--user":
            shown.append(pseudonym(word))
        elif previous in ("--data", "--out", "--json", "--from"):
            shown.append(Path(word).name)
        elif word.startswith("--user="):
            shown.append("--user=" + pseudonym(word.split("=", 1)[1]))
        else:
            shown.append(word)
        previous = word
    _audit(command, {"argv": " ".join(shown)})


def _audit(action: str, detail: dict[str, object]) -> None:
    from recsys_core.security import audit

    audit.record(audit.cli_actor(), action, detail)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The new user's log-in name.")],
    role: Annotated[str, typer.Option(help="viewer | analyst | admin")] = "viewer",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (the first admin: `users add NAME --role admin`)."""
    from recsys_core.security.users import add_user

    user = add_user(username, read_password(password_stdin), role)
    _audit("user-add", {"user": user.username, "role": user.role})
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the users and their roles."""
    from datetime import datetime, timezone

    from recsys_core.security.users import list_users

    rows = [
        {
            "username": u.username,
            "role": u.role,
            "created": datetime.fromtimestamp(u.created, timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        for u in list_users()
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no users: the app runs in local single-user mode (127.0.0.1 only)")
    for r in rows:
        typer.echo(f"{r['username']:<24}{r['role']:<9}{r['created']}")


@users_app.command("remove")
def users_remove(username: Annotated[str, typer.Argument(help="The user to delete.")]) -> None:
    """Delete a user and end their sessions."""
    from recsys_core.security.users import remove_user

    remove_user(username)
    _audit("user-remove", {"user": username})
    typer.echo(f"removed {username}")


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Whose password to set.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password; every session of that user ends."""
    from recsys_core.security.users import get_user, set_password

    if get_user(username) is None:
        raise ConfigError(f"no user {username!r}; `python -m recsys_core users list` shows them")
    set_password(username, read_password(password_stdin, "New password"))
    _audit("user-passwd", {"user": username})
    typer.echo(f"password of {username} changed; their sessions have ended")


@users_app.command("role")
def users_role(
    username: Annotated[str, typer.Argument(help="Whose role to change.")],
    role: Annotated[str, typer.Argument(help="viewer | analyst | admin")],
) -> None:
    """Change a user's role."""
    from recsys_core.security.users import set_role

    set_role(username, role)
    _audit("user-role", {"user": username, "role": role})
    typer.echo(f"{username} is now {role}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 and name the first bad row when it is broken."""
    from recsys_core.security.audit import verify

    result = verify()
    if not result.ok:
        typer.echo(f"audit log BROKEN: {result.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log OK: {result.rows} row(s), chain and head intact")


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
) -> None:
    """Write the whole audit log as CSV (formula-safe)."""
    from recsys_core.security.audit import export_csv

    n = export_csv(out)
    _audit("audit-export", {"rows": n, "out": out.name})
    typer.echo(f"wrote {n} row(s) to {out}")


keys_app = typer.Typer(help="Encryption keys of stored uploads and backups.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new encryption key, re-encrypt every encrypted file under $RECSYS_HOME with it,
    then drop the old keys."""
    from recsys_core.paths import recsys_home
    from recsys_core.security.encryption import SUFFIX, rotate

    files = sorted(p for p in recsys_home().rglob(f"*{SUFFIX}") if p.is_file())
    n = rotate(files)
    _audit("keys-rotate", {"files": n})
    typer.echo(f"new encryption key in use; {n} file(s) re-encrypted, old keys dropped")


@app.command()
def forget(
    user: Annotated[str, typer.Option("--user", help="The shopper id to forget.")],
) -> None:
    """Remove a shopper's events from every stored (uploaded) log and mark the model versions
    trained on them for retraining (audited, with the shopper's pseudonym)."""
    from recsys_core.security.forget import forget_user
    from recsys_core.security.pseudonyms import pseudonym

    report = forget_user(user)
    _audit(
        "forget",
        {
            "shopper": pseudonym(user),
            "events_removed": report.events_removed,
            "uploads": len(report.uploads_changed) + len(report.uploads_removed),
            "versions_marked": len(report.versions_marked),
        },
    )
    typer.echo(
        f"removed {report.events_removed:,} event(s) of shopper {pseudonym(user)} from "
        f"{len(report.uploads_changed) + len(report.uploads_removed)} stored log(s)"
    )
    for name in report.versions_marked:
        typer.echo(f"needs retraining: {name}")
    typer.echo(
        "note: the shipped built-in datasets are not changed; versions trained on them that "
        "hold this shopper are marked for retraining above."
    )
