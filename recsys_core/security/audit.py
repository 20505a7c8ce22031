"""The audit log: an append-only, hash-chained table in the security database.

Each row stores the hash of the row before it (``prev_hash``) and its own hash, the SHA-256 of
its id, time, actor, action, detail and ``prev_hash``. Triggers refuse UPDATE and DELETE, and
the chain head (last id and hash) is also written to ``$RECSYS_HOME/audit.head``, outside the
database, with an HMAC-SHA256 under the audit key (``$RECSYS_AUDIT_KEY``, else
``$RECSYS_HOME/keys/audit.key``, 0600, made on first use): the row hashes are public, so anyone
who can write the files could recompute a whole chain, but without the key they cannot sign
its head. :func:`verify` names the first row that breaks the chain.

The head is written before the write's COMMIT and also names the last row committed before
it, so a lab stopped in between reads as a lost write (an ``audit-write-lost`` row at the next
append), not as tampering. The lab checks the head before every append: a head that does not
match the log (or is not signed) is written into the log as an ``audit-head-mismatch`` row
before the new one, and
append-only triggers found missing are put back with an ``audit-triggers-recreated`` row.
Both rows stay in the log and make :func:`verify` fail from then on: what was changed before
them cannot be trusted. What verify proves, and what it cannot, is in ``docs/privacy.md``.

Everyone records through :func:`record` (the CLI with the OS user as actor ``cli:<user>``,
the app with ``app:<user>``, the REST API with ``api:<key owner>``).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsys_core.io_utils import atomic_write_bytes, atomic_write_text
from recsys_core.paths import recsys_home
from recsys_core.security.db import TRIGGERS, connect, db_path, on_triggers_recreated
from recsys_core.security.keys import key_file, read_or_create
from recsys_core.settings import lab_settings

HEAD_NAME = "audit.head"
GENESIS = "0" * 64
COLUMNS: tuple[str, ...] = ("id", "ts", "actor", "action", "detail", "prev_hash", "hash")
#: The key of the chain head's HMAC: from this variable, else the key file (outside the DB).
ENV_AUDIT_KEY = "RECSYS_AUDIT_KEY"
AUDIT_KEY_FILE = "audit.key"
#: Rows the lab writes when it finds the log changed outside it; each makes verify fail.
HEAD_MISMATCH = "audit-head-mismatch"
TRIGGERS_RECREATED = "audit-triggers-recreated"
INTEGRITY_ACTIONS = frozenset({HEAD_MISMATCH, TRIGGERS_RECREATED})
#: A row the lab writes when the last write before it never arrived (informational).
WRITE_LOST = "audit-write-lost"


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


def _has_audit_key(home: Path | None) -> bool:
    return (
        bool((lab_settings().secret(ENV_AUDIT_KEY) or "").strip())
        or key_file(AUDIT_KEY_FILE, home).exists()
    )


def audit_key(home: Path | None = None) -> bytes:
    """The key of the chain head's HMAC (``$RECSYS_AUDIT_KEY`` or the key file, made on first
    use); it never goes into the database."""
    return read_or_create(AUDIT_KEY_FILE, env=ENV_AUDIT_KEY, home=home)


def head_mac(key: bytes, row_id: int, digest: str, prev_id: int = 0, prev_hash: str = "") -> str:
    """The HMAC-SHA256 that signs a chain head: the last row's id and hash, and the last row
    committed before the write that made it (``prev_id``, ``prev_hash``)."""
    message = json.dumps([row_id, digest, prev_id, prev_hash]).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _HeadCheck:
    """What the head says about the log's last row: a problem, or a write lost in a crash."""

    problem: str | None = None
    lost_row: int | None = None


def _check_head(
    last: tuple[int, str] | None, head: dict[str, Any] | None, key: bytes | None
) -> _HeadCheck:
    """Whether the head file vouches for the log's last row ``last``.

    The head is written inside the write transaction, before its COMMIT, and names the last
    row committed before that write too. A log that ends at that earlier row lost the last
    write (a crash before COMMIT, or those rows were deleted: the two cannot be told apart);
    that is reported as ``lost_row``, not as a problem. ``key`` None: no audit key exists yet
    (a log from before heads were signed), so an unsigned head is accepted once.
    """
    if head is None:
        return _HeadCheck(None if last is None else "the chain head file is missing")
    signed = [head["id"], head["hash"], head["prev_id"], head["prev_hash"]]
    if key is None and head.get("mac") is None:
        pass  # an older lab's head: checked by position only
    elif key is None or not hmac.compare_digest(str(head.get("mac")), head_mac(key, *signed)):
        return _HeadCheck(
            "the chain head is not signed with the lab's audit key: it was rewritten outside "
            "the lab"
        )
    at = last or (0, GENESIS)
    if (head["id"], head["hash"]) == at:
        return _HeadCheck()
    if head.get("mac") is not None and (head["prev_id"], head["prev_hash"]) == at:
        return _HeadCheck(lost_row=int(head["id"]))
    if head["id"] > at[0]:
        return _HeadCheck(f"the chain head says row {head['id']} but the log ends at row {at[0]}")
    if head["id"] < at[0]:
        return _HeadCheck(
            f"row {head['id'] + 1} and later are not in the chain head (appended outside the lab)"
        )
    return _HeadCheck(f"row {at[0]} does not match the chain head: the chain was rebuilt")


def append_rows(
    conn: sqlite3.Connection,
    events: Sequence[tuple[str, str, Mapping[str, Any] | str | None]],
    home: Path | None = None,
) -> list[int]:
    """Append ``(actor, action, detail)`` events inside ``conn``'s write transaction and sign
    the new head once; their row ids (a batched writer calls this with many events).

    The head is checked first: when it does not vouch for the log's last row, an
    ``audit-head-mismatch`` row saying why goes in before the events (and makes
    :func:`verify` fail from then on); when the last write was lost (see :func:`_check_head`),
    an ``audit-write-lost`` row says which row never arrived.
    """
    had_key = _has_audit_key(home)
    key = audit_key(home)
    found = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    committed = (int(found[0]), str(found[1])) if found else (0, GENESIS)
    check = _check_head(found and committed, _read_head(home), key if had_key else None)
    last = committed
    if check.problem is not None:
        last = _insert(conn, last, "lab:audit.head", HEAD_MISMATCH, {"problem": check.problem})
    elif check.lost_row is not None:
        why = "not committed (the lab stopped during that write) or deleted since"
        last = _insert(
            conn, last, "lab:audit.head", WRITE_LOST, {"row": check.lost_row, "why": why}
        )
    ids = []
    for actor, action, detail in events:
        last = _insert(conn, last, actor, action, detail)
        ids.append(last[0])
    # Written while the write lock is held (heads in chain order), before COMMIT: the head
    # also names `committed`, so a crash before COMMIT reads as a lost write, not tampering.
    payload = {
        "id": last[0],
        "hash": last[1],
        "prev_id": committed[0],
        "prev_hash": committed[1],
        "mac": head_mac(key, last[0], last[1], committed[0], committed[1]),
    }
    atomic_write_text(head_path(home), json.dumps(payload) + "\n")
    return ids


def append_row(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    detail: Mapping[str, Any] | str | None,
    home: Path | None = None,
) -> int:
    """:func:`append_rows` for one event; its row id."""
    return append_rows(conn, [(actor, action, detail)], home)[0]


def _insert(
    conn: sqlite3.Connection,
    last: tuple[int, str],
    actor: str,
    action: str,
    detail: Mapping[str, Any] | str | None,
) -> tuple[int, str]:
    ts = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    text = _detail_text(detail)
    row_id, prev = last[0] + 1, last[1]
    digest = row_hash(row_id, ts, actor, action, text, prev)
    conn.execute(
        "INSERT INTO audit (id, ts, actor, action, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts, actor, action, text, prev, digest),
    )
    return row_id, digest


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
    with connect(home) as conn:
        return append_row(conn, actor, action, detail, home)


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`: ``ok``, rows checked, and the first problem."""

    ok: bool
    rows: int
    bad_row: int | None = None
    problem: str | None = None
    #: Not a break: e.g. the last write named in the head never arrived (a crash).
    note: str | None = None


def _read_head(home: Path | None) -> dict[str, Any] | None:
    path = head_path(home)
    if not path.exists():
        return None
    try:
        head = json.loads(path.read_text())
        mac = head.get("mac")
        return {
            "id": int(head["id"]),
            "hash": str(head["hash"]),
            "prev_id": int(head.get("prev_id", 0)),
            "prev_hash": str(head.get("prev_hash", "")),
            "mac": None if mac is None else str(mac),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"id": -1, "hash": "", "prev_id": -1, "prev_hash": "", "mac": None}


def _rows_and_triggers(home: Path | None) -> tuple[list[Any], list[str]]:
    """Every row and the missing triggers, read without changing anything (no schema, no
    trigger put back: that would hide what verify is asked to find)."""
    path = db_path(home)
    if not path.exists():
        return [], []
    raw = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        have = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "audit" not in tables:
            return [], []
        rows = raw.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id").fetchall()
    finally:
        raw.close()
    return rows, [t for t in TRIGGERS if t not in have]


def verify(home: Path | None = None) -> Verification:
    """Check the chain row by row, against the signed head file, the append-only triggers and
    the lab's own integrity rows; name the first bad row."""
    rows, missing = _rows_and_triggers(home)
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
    key = audit_key(home) if _has_audit_key(home) else None
    check = _check_head((last_id, prev_hash) if rows else None, head, key)
    if check.problem is not None:
        problem = check.problem
        if head is not None and head["id"] > last_id:
            return Verification(False, len(rows), last_id + 1, f"the log was truncated: {problem}")
        if head is not None and 0 <= head["id"] < last_id:
            return Verification(False, len(rows), head["id"] + 1, problem)
        if head is None:
            problem = f"the chain head file {head_path(home)} is missing"
        return Verification(False, len(rows), last_id if rows else None, problem)
    note = None
    if check.lost_row is not None:
        note = (
            f"row {check.lost_row} named in the chain head is not in the log: the lab stopped "
            "before that write was committed, or that last write was deleted since"
        )
    if missing and rows:
        return Verification(
            False, len(rows), None, f"the append-only trigger(s) {missing} were removed"
        )
    for row_id, ts, _actor, action, detail, _prev, _digest in rows:
        if action in INTEGRITY_ACTIONS:
            why = (
                "the lab found the append-only triggers removed and put them back"
                if action == TRIGGERS_RECREATED
                else f"the lab found the chain head did not match the log ({detail})"
            )
            return Verification(
                False,
                len(rows),
                row_id,
                f"row {row_id} ({ts}): {why}; the log was changed outside the lab before this row",
            )
    return Verification(True, len(rows), note=note)


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


def _log_triggers_recreated(
    conn: sqlite3.Connection, missing: list[str], home: Path | None
) -> None:
    append_row(conn, "lab:security.db", TRIGGERS_RECREATED, {"triggers": missing}, home)


on_triggers_recreated(_log_triggers_recreated)
