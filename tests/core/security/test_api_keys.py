"""The REST API with users: API keys required (401 without), each request audited as the key
owner with the shopper as a pseudonym; against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from recsys_core.security import audit, users
from recsys_core.security.api_keys import create_key, revoke_keys, user_for_key
from recsys_core.security.pseudonyms import pseudonym
from recsys_core.serving import TrainConfig, save_lab, train_lab
from tests.core.serving.test_api import _start, _stop


def test_keys_belong_to_a_user_and_are_stored_hashed(tmp_path: Path) -> None:
    users.add_user("ann", "long enough password", "viewer")
    key = create_key("ann")
    assert user_for_key(key).username == "ann"  # type: ignore[union-attr]
    assert user_for_key("rk_wrong") is None and user_for_key(None) is None
    assert revoke_keys("ann") == 1 and user_for_key(key) is None
    again = create_key("ann")
    users.remove_user("ann")
    assert user_for_key(again) is None


def test_the_api_needs_a_key_once_users_exist_and_audits_the_owner(
    small_store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    save_lab(train_lab(small_store, TrainConfig(models=["popularity"])), home=home)  # type: ignore[arg-type]
    monkeypatch.setenv("RECSYS_HOME", str(home))
    users.add_user("api-reader", "long enough password", "viewer")
    key = create_key("api-reader")
    shopper = str(small_store.events["user_id"].iloc[0])  # type: ignore[attr-defined]
    proc, url = _start(home)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            params = {"user_id": shopper, "k": 3, "model": "popularity"}
            assert client.get("/recommend", params=params).status_code == 401
            bad = client.get("/recommend", params=params, headers={"X-API-Key": "rk_nope"})
            assert bad.status_code == 401
            ok = client.get("/recommend", params=params, headers={"X-API-Key": key})
            assert ok.status_code == 200, ok.text
            assert client.get("/health").status_code == 200  # no key needed
    finally:
        _stop(proc)
    last = audit.read(limit=1, actor="api:api-reader")[0]
    assert last["action"] == "api /recommend"
    assert pseudonym(shopper) in last["detail"] and f'"{shopper}"' not in last["detail"]
    shutil.rmtree(home, ignore_errors=True)
