"""The audit log: append-only triggers, the hash chain, the head file, verify and export."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_core.security import audit
from recsys_core.security.db import db_path


def _write(n: int = 6) -> None:
    for i in range(n):
        audit.record(f"app:user{i % 2}", "view-shopper", {"shopper": f"S-{i}"})


INSERT = "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)"


def _tamper(*sql: str | tuple[str, tuple[object, ...]]) -> None:
    """What someone with write access to the file could do: drop the triggers, then edit."""
    conn = sqlite3.connect(db_path())
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    for statement in sql:
        if isinstance(statement, str):
            conn.execute(statement)
        else:
            conn.execute(*statement)
    conn.commit()
    conn.close()


def test_an_intact_log_verifies() -> None:
    _write()
    result = audit.verify()
    assert result.ok and result.rows == 6


def test_triggers_refuse_updates_and_deletes() -> None:
    _write()
    conn = sqlite3.connect(db_path())
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE id = 2")
    conn.close()
    assert audit.verify().ok


def test_an_edited_row_is_named() -> None:
    _write()
    _tamper('UPDATE audit SET detail = \'{"shopper": "S-other"}\' WHERE id = 3')
    result = audit.verify()
    assert not result.ok and result.bad_row == 3 and "changed" in str(result.problem)


def test_a_deleted_row_is_named() -> None:
    _write()
    _tamper("DELETE FROM audit WHERE id = 4")
    result = audit.verify()
    assert not result.ok and result.bad_row == 4 and "missing" in str(result.problem)


def test_an_inserted_row_with_a_forged_hash_breaks_the_chain_at_it() -> None:
    _write()
    # shift rows 3.. up by one and put a forged row 3 in between, with a correct own hash
    rows = sqlite3.connect(db_path()).execute("SELECT * FROM audit ORDER BY id").fetchall()
    forged_hash = audit.row_hash(3, rows[2][1], "app:mallory", "login", "", rows[1][6])
    statements: list[str | tuple[str, tuple[object, ...]]] = ["DELETE FROM audit WHERE id >= 3"]
    statements.append(
        (INSERT, (3, rows[2][1], "app:mallory", "login", "", rows[1][6], forged_hash))
    )
    for r in rows[2:]:
        statements.append((INSERT, (r[0] + 1, *r[1:])))
    _tamper(*statements)
    result = audit.verify()
    assert not result.ok and result.bad_row == 4, result
    assert "does not follow row 3" in str(result.problem)


def test_reordered_rows_are_named() -> None:
    _write()
    rows = sqlite3.connect(db_path()).execute("SELECT * FROM audit ORDER BY id").fetchall()
    a, b = rows[1], rows[2]  # swap the contents of rows 2 and 3
    _tamper(
        "DELETE FROM audit WHERE id IN (2, 3)",
        (INSERT, (2, *b[1:])),
        (INSERT, (3, *a[1:])),
    )
    result = audit.verify()
    assert not result.ok and result.bad_row == 2


def test_a_truncated_log_is_noticed_through_the_head_file() -> None:
    _write()
    _tamper("DELETE FROM audit WHERE id >= 5")
    result = audit.verify()
    assert not result.ok and result.bad_row == 5 and "truncated" in str(result.problem)


def test_a_rebuilt_chain_is_noticed_through_the_head_file() -> None:
    _write(3)
    # rebuild every row with valid hashes but a changed actor: only the head file can tell
    rows = sqlite3.connect(db_path()).execute("SELECT * FROM audit ORDER BY id").fetchall()
    statements: list[str | tuple[str, tuple[object, ...]]] = ["DELETE FROM audit"]
    prev = audit.GENESIS
    for r in rows:
        h = audit.row_hash(r[0], r[1], "app:nobody", r[3], r[4], prev)
        statements.append((INSERT, (r[0], r[1], "app:nobody", r[3], r[4], prev, h)))
        prev = h
    _tamper(*statements)
    result = audit.verify()
    assert not result.ok and result.bad_row == 3 and "rebuilt" in str(result.problem)


def test_removed_triggers_alone_are_reported() -> None:
    _write(2)
    _tamper()
    result = audit.verify()
    assert not result.ok and "trigger" in str(result.problem)


def _cli(*args: str, env_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys_core", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_exits_non_zero_naming_the_row_and_export_writes_csv(tmp_path: Path) -> None:
    _write(4)
    audit.record("app:eve", "search", '=HYPERLINK("http://x")')
    ok = _cli("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "audit.csv"
    exported = _cli("audit", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(out.open()))
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4, 5]
    assert rows[4]["detail"].startswith("'")  # formula-safe
    _tamper("UPDATE audit SET actor = 'app:someone' WHERE id = 2")
    broken = _cli("audit", "verify")
    assert broken.returncode != 0
    assert "row 2" in broken.stderr and "Traceback" not in broken.stderr


def test_cli_user_commands_are_audited_with_the_os_user() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recsys_core",
            "users",
            "add",
            "zoe",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        input="long enough password\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = audit.read(limit=1)[0]
    assert last["action"] == "user-add" and last["actor"] == audit.cli_actor()
    assert "long enough password" not in db_path().read_text(errors="ignore")
    bad = _cli("users", "role", "zoe", "root")
    assert bad.returncode == 2 and "unknown role" in bad.stderr


@pytest.mark.slow
def test_cli_commands_are_audited_with_pseudonyms_and_file_names_only() -> None:
    from recsys_core.security.pseudonyms import pseudonym

    done = _cli("recommend", "--user", "12346", "--k", "3")
    assert done.returncode == 2  # nothing trained in this home: refused, but audited
    last = audit.read(limit=1)[0]
    assert last["action"] == "recommend" and last["actor"] == audit.cli_actor()
    assert pseudonym("12346") in last["detail"] and "12346" not in last["detail"]
    _cli("validate", "/nowhere/secret-dir/log.csv")  # not an audited command
    assert audit.read(limit=1)[0]["id"] == last["id"]


def _attack_script() -> None:
    """The attack from issue 23 item 9, by someone who can write the files but has no key:
    drop the triggers, edit row 1, delete the last row, recompute the chain with the public
    ``row_hash`` and rewrite the head."""
    import json

    conn = sqlite3.connect(db_path())
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("UPDATE audit SET actor = 'app:nobody' WHERE id = 1")
    last = conn.execute("SELECT max(id) FROM audit").fetchone()[0]
    conn.execute("DELETE FROM audit WHERE id = ?", (last,))
    prev = audit.GENESIS
    rows = conn.execute("SELECT * FROM audit ORDER BY id").fetchall()
    for r in rows:
        h = audit.row_hash(r[0], r[1], r[2], r[3], r[4], prev)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, h, r[0]))
        prev = h
    conn.commit()
    conn.close()
    old = json.loads(audit.head_path().read_text())
    forged = {"id": rows[-1][0], "hash": prev, "mac": old.get("mac")}  # the old mac, reused
    audit.head_path().write_text(json.dumps(forged) + "\n")


def test_the_attack_script_from_the_issue_fails_verification() -> None:
    _write(5)
    assert audit.verify().ok
    _attack_script()
    result = audit.verify()
    assert not result.ok and "not signed with the lab's audit key" in str(result.problem)
    # nor does it pass once the next lab command has put the triggers back and appended
    audit.record("cli:ops", "registry", {"argv": "registry list"})
    after = audit.verify()
    assert not after.ok, after
    actions = [r["action"] for r in audit.read(limit=3)]
    assert actions == ["registry", audit.TRIGGERS_RECREATED, audit.HEAD_MISMATCH], actions
    assert "outside the lab" in str(after.problem)


def test_re_created_triggers_are_an_audited_event_that_fails_verification() -> None:
    _write(3)
    _tamper()  # only drop the triggers
    assert "trigger" in str(audit.verify().problem)
    from recsys_core.security.users import any_users

    any_users()  # any lab command opens the database and puts the triggers back
    rows = audit.read(limit=1)
    assert rows[0]["action"] == audit.TRIGGERS_RECREATED and "audit_no_update" in rows[0]["detail"]
    result = audit.verify()
    assert not result.ok and result.bad_row == 4 and "put them back" in str(result.problem)


def test_the_head_is_signed_with_a_key_kept_outside_the_database() -> None:
    import json
    import stat

    from recsys_core.security.keys import key_file

    _write(2)
    head = json.loads(audit.head_path().read_text())
    key = key_file(audit.AUDIT_KEY_FILE)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signed = [head["id"], head["hash"], head["prev_id"], head["prev_hash"]]
    assert head["mac"] == audit.head_mac(key.read_bytes().strip(), *signed)
    assert key.read_bytes().strip() not in db_path().read_bytes()
    unsigned = {"id": head["id"], "hash": head["hash"]}  # what an older lab wrote
    audit.head_path().write_text(json.dumps(unsigned))
    assert not audit.verify().ok  # once a key exists, an unsigned head is a rewritten one


def test_a_log_from_before_signed_heads_is_accepted_once_and_signed() -> None:
    import json

    from recsys_core.security.keys import key_file

    _write(2)
    key_file(audit.AUDIT_KEY_FILE).unlink()
    head = json.loads(audit.head_path().read_text())
    audit.head_path().write_text(json.dumps({"id": head["id"], "hash": head["hash"]}))
    assert audit.verify().ok  # an older lab's unsigned head: nothing to check it against yet
    audit.record("app:ann", "login")
    assert audit.verify().ok and "mac" in json.loads(audit.head_path().read_text())


def test_a_write_lost_in_a_crash_before_commit_is_a_note_not_a_break() -> None:
    """The head is written before COMMIT; a lab killed in between must not leave a log that
    fails verify for ever (the faults helper's kill -9 runs)."""
    from recsys_core.security.db import connect

    _write(3)
    with pytest.raises(RuntimeError), connect() as conn:
        audit.append_rows(conn, [("app:ann", "search", {"q": "mug"}), ("app:ann", "login", None)])
        raise RuntimeError("the lab stops before COMMIT")
    result = audit.verify()
    assert result.ok and result.rows == 3
    assert "row 5 named in the chain head is not in the log" in str(result.note)
    audit.record("app:bob", "login")
    rows = audit.read(limit=2)
    assert [r["action"] for r in rows] == ["login", audit.WRITE_LOST]
    assert '"row": 5' in rows[1]["detail"]
    after = audit.verify()
    assert after.ok and after.note is None and after.rows == 5


def test_rows_deleted_further_back_than_the_last_write_still_break_it() -> None:
    _write(4)
    _tamper("DELETE FROM audit WHERE id >= 3")  # two single-row writes: 3 and 4
    result = audit.verify()
    assert not result.ok and "truncated" in str(result.problem)


def test_verify_works_with_the_default_relative_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_HOME", ".recsys")  # the default: relative to the working folder
    _write(2)
    assert audit.verify().ok
