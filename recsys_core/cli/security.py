"""Security commands: ``users add|list|remove|passwd|role``, ``audit verify|export``,
``keys rotate|drop-retired``, ``forget``.

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
    typer.echo(
        f"password of {username} changed; their sessions have ended and their failed "
        "log-ins are cleared"
    )


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
    typer.echo(f"audit log OK: {result.rows} row(s), chain and signed head intact")
    if result.note:
        typer.echo(f"note: {result.note}")


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


AlsoPaths = Annotated[
    list[Path] | None,
    typer.Option(
        "--also",
        help="Another file or folder to include (e.g. where backups are kept); repeatable.",
    ),
]


def _version_parts(files: list[Path]) -> dict[Path, list[Path]]:
    """Encrypted files inside saved model versions, by version folder."""
    from recsys_core.serving.registry import models_root

    root = models_root()
    grouped: dict[Path, list[Path]] = {}
    for path in files:
        if path.is_relative_to(root) and len(path.relative_to(root).parts) >= 3:
            ds, version = path.relative_to(root).parts[:2]
            grouped.setdefault(root / ds / version, []).append(path)
    return grouped


@keys_app.command("rotate")
def keys_rotate(also: AlsoPaths = None) -> None:
    """Make a new encryption key and re-encrypt every encrypted file under $RECSYS_HOME with it
    (uploads, encrypted model parts, backups kept there; found by their first bytes, not their
    names). The older keys are kept, retired: they only decrypt, so backups stored elsewhere and
    the model parts inside backups stay readable. `keys drop-retired` removes them once nothing
    needs them."""
    from recsys_core.paths import recsys_home
    from recsys_core.security.encryption import find_encrypted, rotate
    from recsys_core.serving.registry import update_checksums, verify_version

    files = find_encrypted([recsys_home(), *(also or [])])
    versions = _version_parts(files)
    damaged: dict[Path, str] = {}
    for folder, parts in versions.items():  # never re-checksum a part that was changed
        problems = verify_version(folder).problems
        for path in parts:
            name = path.relative_to(folder).as_posix()
            if name in problems:
                damaged[path] = f"it fails its checksum ({problems[name]}); left as it is"
    result = rotate([p for p in files if p not in damaged])
    done = set(result.re_encrypted)
    for folder, parts in versions.items():
        names = [p.relative_to(folder).as_posix() for p in parts if p in done]
        if names:
            update_checksums(folder, names)
    failed = {**damaged, **result.failed}
    _audit(
        "keys-rotate",
        {
            "files": len(result.re_encrypted),
            "failed": len(failed),
            "retired_keys": result.retired_keys,
            "new_key": result.new_key,
        },
    )
    first = "new encryption key in use" if result.new_key else "the first key of the list in use"
    typer.echo(
        f"{first}; {len(result.re_encrypted)} file(s) re-encrypted; {result.retired_keys} "
        "retired key(s) kept for decryption only (backups elsewhere and the model parts "
        "inside backups may need them; `keys drop-retired` removes them when nothing does)"
    )
    if failed:
        for path, why in failed.items():
            typer.echo(f"not re-encrypted: {path}: {why}", err=True)
        typer.echo(
            f"{len(failed)} file(s) were not re-encrypted; no key was dropped, so they stay "
            "readable as before",
            err=True,
        )
        raise typer.Exit(1)


@keys_app.command("drop-retired")
def keys_drop_retired(also: AlsoPaths = None) -> None:
    """Remove the retired keys, but only when every encrypted file under $RECSYS_HOME and the
    --also paths (backups: read through, down to the model parts inside them) reads under the
    newest key alone; otherwise name the files that still need a retired key and keep all."""
    from recsys_core.paths import recsys_home
    from recsys_core.security.encryption import drop_retired, find_encrypted, key_counts

    _, retired = key_counts()
    if retired == 0:
        typer.echo("no retired key to drop")
        return
    blocked = drop_retired(find_encrypted([recsys_home(), *(also or [])]))
    _audit("keys-drop-retired", {"dropped": 0 if blocked else retired, "blocked": len(blocked)})
    if blocked:
        for path, why in blocked.items():
            typer.echo(f"still needs a retired key: {path}: {why}", err=True)
        typer.echo(
            f"kept all {retired} retired key(s): {len(blocked)} file(s) still need them. Run "
            "`keys rotate` (with --also for backups kept elsewhere), make new backups and "
            "delete the old ones, then try again.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"dropped {retired} retired key(s); every file found reads under the newest key")


@app.command()
def forget(
    user: Annotated[str, typer.Option("--user", help="The shopper id to forget.")],
) -> None:
    """Never serve the shopper again (a deny-list every service applies, from the moment this
    returns), remove their events from every stored (uploaded) log and mark the model versions
    trained on them for retraining (audited, with the shopper's pseudonym)."""
    from recsys_core.security.forget import SavedVersion, forget_user
    from recsys_core.security.pseudonyms import pseudonym
    from recsys_core.serving.registry import list_versions

    versions = [
        SavedVersion(str(v["dataset"]), str(v["version"]), Path(v["path"])) for v in list_versions()
    ]
    report = forget_user(user, versions)
    _audit(
        "forget",
        {
            "shopper": pseudonym(user),
            "events_removed": report.events_removed,
            "uploads": len(report.uploads_changed) + len(report.uploads_removed),
            "versions_marked": len(report.versions_marked),
            "unreadable": len(report.unreadable),
        },
    )
    typer.echo(
        f"shopper {pseudonym(user)} is on the deny-list: nothing is served for them from now on"
    )
    typer.echo(
        f"removed {report.events_removed:,} event(s) of shopper {pseudonym(user)} from "
        f"{len(report.uploads_changed) + len(report.uploads_removed)} stored log(s)"
    )
    for name in report.versions_marked:
        typer.echo(f"needs retraining: {name}")
    for name, why in report.unreadable.items():
        typer.echo(f"could not be searched (its version is marked): {name}: {why}", err=True)
    typer.echo(
        "note: the shipped built-in datasets are not changed; versions trained on them that "
        "hold this shopper are marked for retraining above."
    )
