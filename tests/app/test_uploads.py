"""Uploads in the app: they switch the dataset at once, survive a reload (stored encrypted on
disk), clear stale errors, respect the size limit, and refuse a tampered file."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.security.uploads import EVENTS, list_uploads
from tests.app.test_pages import (  # noqa: F401
    APP,
    CUSTOM_CSV,
    TIMEOUT,
    AppData,
    _isolated_home,
    _upload_custom_log,
    app_data,
)
from ui import state
from ui.upload import handle_upload

MAPPING = {"user_id": "who", "item_id": "what", "event": "action", "timestamp": "when"}


def _fresh_session() -> dict[str, Any]:
    session: dict[str, Any] = {state.UPLOADS: {}}
    state.ensure_session(session)
    return session


def _run(page: str, session: dict[str, Any], **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in session.items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page != "app_pages/overview.py":
        at.switch_page(page).run()
    return at


def test_a_valid_upload_switches_the_sidebar_and_the_data_page_at_once() -> None:
    session = _fresh_session()
    outcome = _upload_custom_log(session, MAPPING)
    assert outcome.ok, outcome.message
    at = _run("app_pages/data.py", session)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state[state.DATASET_KEY] == outcome.key
    assert at.selectbox(key="data_dataset_select").value == outcome.key
    assert any("custom.csv (uploaded)" in c.value for c in at.sidebar.caption)
    assert {m.label: m.value for m in at.metric}["Events"] == "240"


def test_an_upload_is_stored_encrypted_and_comes_back_after_a_reload() -> None:
    outcome = _upload_custom_log(_fresh_session(), MAPPING)
    assert outcome.key is not None
    stored = [u for u in list_uploads("local") if state.UPLOAD_PREFIX + u.checksum == outcome.key]
    assert len(stored) == 1
    token = (stored[0].path / EVENTS).read_bytes()
    assert token.startswith(b"gAAAAA")  # a Fernet token, not Parquet
    assert b"PAR1" not in base64.urlsafe_b64decode(token)
    # a reload: a brand-new session with nothing in it but the URL
    at = _run("app_pages/data.py", {}, dataset=outcome.key)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state[state.DATASET_KEY] == outcome.key
    assert outcome.key in at.selectbox(key="data_dataset_select").options or any(
        "custom.csv (uploaded)" in o for o in at.selectbox(key="data_dataset_select").options
    )
    # and without the URL it is still offered
    plain = _run("app_pages/data.py", {})
    assert any(
        "custom.csv (uploaded)" in o for o in plain.selectbox(key="data_dataset_select").options
    )


def test_a_tampered_stored_upload_is_refused_with_a_clear_message() -> None:
    outcome = _upload_custom_log(_fresh_session(), MAPPING)
    upload = next(u for u in list_uploads("local") if outcome.key.endswith(u.checksum))  # type: ignore[union-attr]
    path = upload.path / EVENTS
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    at = _run("app_pages/data.py", {}, dataset=outcome.key)  # type: ignore[arg-type]
    assert not at.exception
    assert any("cannot be decrypted" in e.value for e in at.error), [e.value for e in at.error]


def test_a_file_over_the_upload_limit_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSYS_MAX_UPLOAD_MB", "0.001")
    session = _fresh_session()
    before = session[state.DATASET_KEY]
    outcome = handle_upload("custom.csv", CUSTOM_CSV, state=session, column_map=MAPPING)
    assert not outcome.ok and "RECSYS_MAX_UPLOAD_MB" in outcome.message
    assert session[state.DATASET_KEY] == before


def test_every_problem_of_an_upload_is_listed_with_rows_and_counts() -> None:
    bad = b"who;what;action;when\nc1;p1;look;2024-01-01\n;p2;buy;never\nc3;p3;zap;2024-01-03\n"
    session = _fresh_session()
    outcome = handle_upload("bad.csv", bad, state=session, column_map=MAPPING)
    assert not outcome.ok
    message = outcome.message
    assert message.startswith("3 problems in bad.csv")
    assert "empty user_id" in message and "line 3" in message
    assert "'look' (1 rows)" in message and "'zap' (1 rows)" in message
    assert "event names table" in message and "--event-map" not in message
    assert "cannot be read" in message and "'never'" in message


def test_choosing_another_file_clears_the_last_error(app_data: AppData) -> None:  # noqa: F811
    session = {k: v for k, v in _fresh_session().items()}
    handle_upload("bad.csv", b"customer,sku\n1,A\n", state=session)
    assert session[state.UPLOAD_MESSAGE]["ok"] is False
    at = _run("app_pages/data.py", session)
    assert at.error
    from ui.upload import clear_message

    clear_message(session)  # what the file widget's on_change does
    again = _run("app_pages/data.py", session)
    assert not again.error
    assert Path(app_data.csv).exists()


def test_an_undecodable_file_points_at_the_encoding_menu_and_latin_1_reads_it() -> None:
    from ui.upload import preview_upload

    data = "who;what;action;when\nc1;Café;buy;2024-01-01\n".encode("latin-1")
    session = _fresh_session()
    outcome = handle_upload("l1.csv", data, state=session, column_map=MAPPING)
    assert not outcome.ok
    assert "'Text encoding'" in outcome.message and "--encoding" not in outcome.message
    with pytest.raises(Exception, match="Text encoding"):
        preview_upload("l1.csv", data)
    assert preview_upload("l1.csv", data, "latin-1").rows == 1
    ok = handle_upload(
        "l1.csv", data, state=session, column_map=MAPPING, encoding="latin-1", event_map={}
    )
    assert ok.ok, ok.message
