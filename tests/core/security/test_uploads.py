"""Upload workspaces: one per user, never shared by two names, the stored owner checked on
every read (issue 23 item 6: ``carol_smith`` read ``carol.smith``'s upload)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys_core.data.schema import Dataset, catalog_from_events, validate_events
from recsys_core.errors import AuthError, UnknownDatasetError
from recsys_core.evaluation import data_checksum
from recsys_core.security.uploads import (
    META,
    find_upload,
    folder_owner,
    list_uploads,
    load_upload,
    owner_folder,
    store_upload,
    upload_dataset_name,
)


def _log(user: str) -> Dataset:
    raw = pd.DataFrame(
        {"user_id": [user] * 3, "item_id": ["a", "b", "c"], "event": ["view", "cart", "purchase"]}
    )
    events = validate_events(raw, source="t.csv")
    return Dataset("t", events, catalog_from_events(events))


def test_carol_smith_cannot_read_carol_dot_smiths_upload() -> None:
    secret = _log("secret-shopper")
    checksum = data_checksum(secret.events)
    store_upload(secret, "carol.smith", "shop.csv", checksum)
    assert [u.owner for u in list_uploads("carol.smith")] == ["carol.smith"]
    assert list_uploads("carol_smith") == []
    with pytest.raises(UnknownDatasetError):
        find_upload(checksum, "carol_smith")
    # the same file uploaded by both: two folders, two dataset names
    store_upload(secret, "carol_smith", "shop.csv", checksum)
    mine = list_uploads("carol_smith")
    theirs = list_uploads("carol.smith")
    assert len(mine) == len(theirs) == 1
    assert mine[0].path != theirs[0].path
    assert mine[0].name != theirs[0].name
    assert upload_dataset_name("carol_smith", "shop.csv", checksum).startswith(
        "upload-carol_smith-shop-"
    )
    assert folder_owner(owner_folder("carol.smith")) == "carol.smith"
    assert folder_owner(owner_folder("Carol.Smith")) != folder_owner(owner_folder("carol.smith"))
    with pytest.raises(AuthError, match="another user"):
        load_upload(theirs[0], owner="carol_smith")
    assert len(load_upload(mine[0], owner="carol_smith").events) == 3


def test_a_long_name_is_not_cut_into_someone_elses_workspace() -> None:
    stem = "a" * 40
    ds = _log("x")
    checksum = data_checksum(ds.events)
    store_upload(ds, stem + "1", "shop.csv", checksum)
    assert list_uploads(stem + "2") == []
    assert upload_dataset_name(stem + "1", "f", checksum) != upload_dataset_name(
        stem + "2", "f", checksum
    )


def test_a_meta_json_naming_another_owner_is_not_trusted() -> None:
    ds = _log("x")
    stored = store_upload(ds, "mallory", "shop.csv", data_checksum(ds.events))
    meta = json.loads((stored.path / META).read_text())
    meta["owner"] = "alice"  # edited to claim to be alice's
    (stored.path / META).write_text(json.dumps(meta))
    assert list_uploads("alice") == []
    assert list_uploads("mallory") == []


def test_an_upload_in_an_older_folder_is_read_by_its_stored_owner() -> None:
    ds = _log("x")
    stored = store_upload(ds, "carol.smith", "shop.csv", data_checksum(ds.events))
    legacy = stored.path.parent.parent / "carol_smith"  # how folders were named before
    stored.path.parent.rename(legacy)
    assert [u.owner for u in list_uploads("carol.smith")] == ["carol.smith"]
    assert list_uploads("carol_smith") == []
