"""The audit log: an append-only, hash-chained table in the security database.

Each row stores the hash of the row before it (``prev_hash``) and its own hash, the SHA-256 of
its id, time, actor, action, detail and ``prev_hash``. Triggers refuse UPDATE and DELETE, and
the chain head (last id and hash) is also written to ``$RECSYS_HOME/audit.head``, outside the
database, so a rebuilt or truncated chain is noticed too. :func:`verify` names the first row
that breaks the chain.

Everyone records through :func:`record` (the CLI with the OS user as actor ``cli:<user>``,
the app with ``app:<user>``, the REST API with ``api:<key owner>``).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.io_utils import atomic_write_bytes, atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.security.db import connect, db_path

HEAD_NAME = "audit.head"
GENESIS = "0" * 64
COLUMNS: tuple[str, ...] = ("id", "ts", "actor", "action", "detail", "prev_hash", "hash")
_TRIGGERS = ("audit_no_update", "audit_no_delete")


def row_hash(row_id: int, ts: str, actor: str, action: str, detail: str, prev_hash: str) -> str:
    """The hash a row must carry: SHA-256 over its content and the previous row's hash."""
    payload = json.dumps([row_id, ts, actor, action, detail, prev_hash], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def head_path(home: Path | None = None) -> Path:
    """``$RECSYS_HOME/audit.head`` (the last row's id and hash)."""
    return (home or recsys_home()) / HEAD_NAME


def cli_actor() -> str:
    """The actor of a CLI command: ``cli:<OS user>``."""
    try:
        name = getpass.getuser()
    except Exception:  # pragma: no cover - no user name in this environment
        name = "unknown"
    return f"cli:{name}"


def _detail_text(detail: Mapping[str, Any] | str | None) -> str:
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    return json.dumps(dict(detail), sort_keys=True, default=str, ensure_ascii=False)


def record(
    actor: str,
    action: str,
    detail: Mapping[str, Any] | str | None = None,
    *,
    home: Path | None = None,
) -> int:
    """Append one event to the audit log; returns its row id.

    Parameters
    ----------
    actor:
        Who: ``cli:<OS user>``, ``app:<user>``, ``api:<key owner>``.
    action:
        What, as a short verb: ``login``, ``login-failed``, ``view-shopper``, ``search``,
        ``upload``, ``train``, ``evaluate``, ``export``, ``activate``, ``rollback``,
        ``restore``, ``user-add``, ``reveal-id``, ``forget``, ...
    detail:
        Anything else (a mapping is stored as JSON). Shoppers appear as pseudonyms here.
    """
    ts = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    text = _detail_text(detail)
    with connect(home) as conn:
        last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        row_id = (last[0] + 1) if last else 1
        prev = last[1] if last else GENESIS
        digest = row_hash(row_id, ts, actor, action, text, prev)
        conn.execute(
            "INSERT INTO audit (id, ts, actor, action, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row_id, ts, actor, action, text, prev, digest),
        )
        # Written while the write lock is held, so heads are written in chain order.
        atomic_write_text(head_path(home), json.dumps({"id": row_id, "hash": digest}) + "\n")
    return row_id


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: ``ok``, rows checked, and the first problem."""

    ok: bool
    rows: int
    bad_row: int | None = None
    problem: str | None = None


def _read_head(home: Path | None) -> dict[str, Any] | None:
    path = head_path(home)
    if not path.exists():
        return None
    try:
        head = json.loads(path.read_text())
        return {"id": int(head["id"]), "hash": str(head["hash"])}
    except (ValueError, KeyError, TypeError):
        return {"id": -1, "hash": ""}


def verify(home: Path | None = None) -> Verification:
    """Check the chain row by row and against the head file; name the first bad row."""
    triggers: set[str] = set()
    if db_path(home).exists():  # before connect(), which would put missing triggers back
        raw = sqlite3.connect(db_path(home))
        try:
            triggers = {
                r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            }
        finally:
            raw.close()
    with connect(home) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id").fetchall()
    prev_hash = GENESIS
    expected = 1
    for row_id, ts, actor, action, detail, prev, digest in rows:
        if row_id != expected:
            if row_id > expected:
                what = f"row {expected} is missing (deleted) before row {row_id}"
            else:
                what = f"row {row_id} is out of order"
            return Verification(False, len(rows), expected, what)
        if prev != prev_hash:
            return Verification(
                False,
                len(rows),
                row_id,
                f"row {row_id} does not follow row {row_id - 1} (a row was inserted, deleted "
                "or reordered here)",
            )
        if row_hash(row_id, ts, actor, action, detail, prev) != digest:
            return Verification(
                False, len(rows), row_id, f"row {row_id} was changed after it was written"
            )
        prev_hash = digest
        expected += 1
    last_id = expected - 1
    head = _read_head(home)
    if head is None:
        if rows:
            return Verification(
                False, len(rows), None, f"the chain head file {head_path(home)} is missing"
            )
    elif head["id"] > last_id:
        return Verification(
            False,
            len(rows),
            last_id + 1,
            f"the log was truncated: the chain head says row {head['id']} but the log ends at "
            f"row {last_id}",
        )
    elif head["id"] < last_id:
        return Verification(
            False,
            len(rows),
            head["id"] + 1,
            f"row {head['id'] + 1} and later are not in the chain head (appended outside the lab)",
        )
    elif rows and head["hash"] != prev_hash:
        return Verification(
            False,
            len(rows),
            last_id,
            f"row {last_id} does not match the chain head: the chain was rebuilt",
        )
    missing = [t for t in _TRIGGERS if t not in triggers]
    if missing and rows:
        return Verification(
            False, len(rows), None, f"the append-only trigger(s) {missing} were removed"
        )
    return Verification(True, len(rows))


def read(
    *,
    actor: str | None = None,
    action: str | None = None,
    contains: str | None = None,
    limit: int = 1000,
    home: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows of the log, newest first, filtered by actor and action (exact) and text."""
    where, args = [], []
    if actor:
        where.append("actor = ?")
        args.append(actor)
    if action:
        where.append("action = ?")
        args.append(action)
    if contains:
        where.append("(detail LIKE ? OR actor LIKE ?)")
        args.extend([f"%{contains}%", f"%{contains}%"])
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(str(int(limit)))
    with connect(home) as conn:
        rows = conn.execute(sql, args).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def export_csv(out: Path, home: Path | None = None) -> int:
    """Write the whole log (oldest first) as CSV, formula-safe; returns the row count."""
    from recsys_core.security.exports import csv_text

    with connect(home) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id").fetchall()
    atomic_write_bytes(out, csv_text(COLUMNS, rows).encode("utf-8"))
    return len(rows)
