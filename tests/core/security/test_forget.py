"""forget --user: the shopper's events leave every stored log; versions on them are marked."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from recsys_core.data.schema import Dataset, catalog_from_events, validate_events
from recsys_core.evaluation import data_checksum
from recsys_core.security import audit
from recsys_core.security.encryption import read_encrypted
from recsys_core.security.forget import needs_retraining
from recsys_core.security.pseudonyms import pseudonym
from recsys_core.security.uploads import list_uploads, load_upload, store_upload
from recsys_core.serving import TrainConfig, save_lab, train_lab


def _log(users: list[str]) -> Dataset:
    raw = pd.DataFrame(
        {
            "user_id": [u for u in users for _ in range(4)],
            "item_id": [f"i{(hash(u) + j) % 5}" for u in users for j in range(4)],
            "event": ["purchase", "view", "view", "cart"] * len(users),
        }
    )
    events = validate_events(raw, source="t.csv")
    return Dataset("t", events, catalog_from_events(events))


def _store(owner: str, users: list[str]) -> str:
    ds = _log(users)
    stored = store_upload(ds, owner, "shop.csv", data_checksum(ds.events))
    lab = train_lab(
        Dataset(stored.name, ds.events, ds.catalog), TrainConfig(models=["popularity", "itemknn"])
    )
    save_lab(lab, activate=False)
    return stored.name


def test_after_forget_the_id_is_in_no_stored_log_and_versions_are_marked() -> None:
    with_her = _store("ann", ["c1", "c2", "c3", "17850"])
    without = _store("bob", ["c2", "c3"])
    shipped = _log(["c9", "17850"])  # a version trained elsewhere that holds her too
    save_lab(
        train_lab(Dataset("shipped", shipped.events, shipped.catalog), TrainConfig(models=["als"]))
    )
    done = subprocess.run(
        [sys.executable, "-m", "recsys_core", "forget", "--user", "17850"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "removed 4 event(s)" in done.stdout
    uploads = list_uploads()
    assert len(uploads) == 2
    for upload in uploads:
        events = load_upload(upload).events
        assert "17850" not in set(events["user_id"].astype(str))
        for path in upload.path.iterdir():  # nothing on disk names her either
            data = read_encrypted(path) if path.suffix == ".enc" else path.read_bytes()
            assert b"17850" not in data
    assert sum(len(load_upload(u).events) for u in uploads) == 4 * 4 + 2 * 4 - 4
    marked = {m["dataset"] for m in needs_retraining()}
    assert with_her in marked and "shipped" in marked and without not in marked
    last = audit.read(limit=1)[0]
    assert last["action"] == "forget" and pseudonym("17850") in last["detail"]
    assert "17850" not in last["detail"]
