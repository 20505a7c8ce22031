"""The REST API's per-request lookups (is there a user? whose key is this?) never wait for
the security database's write lock, which the audit writer takes on every group commit;
and the API moves the loaded lab out of the garbage collector's reach."""

from __future__ import annotations

import gc
import sqlite3
import threading
from pathlib import Path

from recsys_core.security.db import db_path
from recsys_core.security.users import add_user, any_users
from recsys_core.serving.api_keys import create_key, user_for_key


def test_key_and_user_lookups_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    add_user("ana", "correct horse battery", "analyst", home=tmp_path)
    key, _ = create_key("ana", home=tmp_path)
    writer = sqlite3.connect(db_path(tmp_path), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # as the audit writer holds it during a commit
    writer.execute(
        "INSERT INTO audit (id, ts, actor, action, detail, prev_hash, hash) "
        "VALUES (999999, 't', 'a', 'b', '', '', '')"
    )
    found: dict[str, object] = {}

    def lookups() -> None:
        found["users"] = any_users(tmp_path)
        found["user"] = user_for_key(key, tmp_path)

    thread = threading.Thread(target=lookups, daemon=True)
    thread.start()
    thread.join(timeout=10)  # through the write lock they waited the 30 s busy timeout
    try:
        assert not thread.is_alive(), "a lookup waited for the write lock"
        assert found["users"] is True
        user = found["user"]
        assert user is not None and user.username == "ana" and user.role == "analyst"
        assert user_for_key("rk_x_wrong", tmp_path) is None
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_lookups_on_a_home_without_a_database_answer_nobody(tmp_path: Path) -> None:
    assert any_users(tmp_path) is False
    assert user_for_key("rk_x_anything", tmp_path) is None
    assert not db_path(tmp_path).exists()  # a lookup creates nothing


def test_the_api_freezes_the_loaded_lab_out_of_the_collector(small_store: object) -> None:
    from fastapi.testclient import TestClient

    from recsys_core.serving import RecommendationService
    from recsys_core.serving.api import create_app
    from recsys_core.training import TrainConfig, train_lab

    lab = train_lab(small_store, TrainConfig(models=["popularity"]))  # type: ignore[arg-type]
    service = RecommendationService(lab)
    gc.unfreeze()
    try:
        with TestClient(
            create_app(lambda: service), base_url="http://127.0.0.1", client=("127.0.0.1", 50000)
        ) as client:
            assert gc.get_freeze_count() > 0  # the lifespan froze what was loaded
            assert client.get("/health").status_code == 200
    finally:
        gc.unfreeze()
