"""forget --user: the shopper's events leave every stored log; versions on them are marked."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from recsys_core.data.schema import Dataset, catalog_from_events, validate_events
from recsys_core.evaluation import data_checksum
from recsys_core.policy import ListPolicy
from recsys_core.security import audit
from recsys_core.security.encryption import read_encrypted
from recsys_core.security.forget import needs_retraining
from recsys_core.security.pseudonyms import pseudonym
from recsys_core.security.uploads import list_uploads, load_upload, store_upload
from recsys_core.serving import save_lab
from recsys_core.training import TrainConfig, train_lab


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


def test_with_encrypted_versions_forget_marks_them_and_the_service_refuses_her_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 23 item 10: with RECSYS_ENCRYPT_ARTIFACTS=1 `forget` read the encrypted files as
    text, skipped the errors and marked nothing, and she was still served until a retrain."""
    from recsys_core.security.denylist import ForgottenShopperError, is_forgotten
    from recsys_core.serving import RecommendationService

    monkeypatch.setenv("RECSYS_ENCRYPT_ARTIFACTS", "1")
    shipped = _log(["c9", "c8", "17850"])  # a built-in-like version, not an upload
    lab = train_lab(
        Dataset("shipped", shipped.events, shipped.catalog), TrainConfig(models=["popularity"])
    )
    save_lab(lab)
    other = _log(["c9", "c8"])
    save_lab(
        train_lab(Dataset("other", other.events, other.catalog), TrainConfig(models=["popularity"]))
    )
    service = RecommendationService(lab)  # a service already running before the forget
    assert service.recommend("17850", 3, "popularity", policy="lab-rule")["items"]
    assert not is_forgotten("17850")
    done = subprocess.run(
        [sys.executable, "-m", "recsys_core", "forget", "--user", "17850"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "deny-list" in done.stdout and "could not be searched" not in done.stderr
    marked = {m["dataset"] for m in needs_retraining()}
    assert marked == {"shipped"}, marked
    # from the moment forget returned: refused, by the running service and by the CLI
    with pytest.raises(ForgottenShopperError, match="asked to be forgotten"):
        service.recommend("17850", 3, "popularity", policy="lab-rule")
    with pytest.raises(ForgottenShopperError):
        service.recommend_frame("17850", 3, "popularity", policy="lab-rule")
    assert service.recommend("c9", 3, "popularity", policy="lab-rule")[
        "items"
    ]  # the others are served
    from recsys_core.serving.batch import score_batch

    scored = set(
        score_batch(lab, "popularity", 3, policy=ListPolicy("keep")).frame["user_id"].astype(str)
    )
    assert "17850" not in scored and {"c9", "c8"} <= scored  # nor in a new batch file
    cli = subprocess.run(
        [sys.executable, "-m", "recsys_core", "recommend", "--user", "17850", "--model"]
        + ["popularity", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode != 0 and "forgotten" in cli.stderr and "Traceback" not in cli.stderr
    # the deny-list holds no raw id
    from recsys_core.security.denylist import denylist_path

    assert "17850" not in denylist_path().read_text()


def test_an_unreadable_version_file_is_reported_and_its_version_marked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.fernet import Fernet

    from recsys_core.security.encryption import ENV_KEYS
    from recsys_core.security.forget import SavedVersion, forget_user

    monkeypatch.setenv(ENV_KEYS, Fernet.generate_key().decode())
    monkeypatch.setenv("RECSYS_ENCRYPT_ARTIFACTS", "1")
    ds = _log(["c9", "c8"])  # she is not in it, but that cannot be proven without the key
    folder = save_lab(
        train_lab(Dataset("x", ds.events, ds.catalog), TrainConfig(models=["popularity"]))
    )
    monkeypatch.setenv(ENV_KEYS, Fernet.generate_key().decode())  # the key was lost
    report = forget_user("17850", [SavedVersion("x", folder.name, folder)])
    assert report.versions_marked == [f"x/{folder.name}"]
    assert report.unreadable and all("cannot be decrypted" in w for w in report.unreadable.values())


def test_security_stays_a_leaf() -> None:
    code = (
        "import sys\n"
        "import recsys_core.security.forget, recsys_core.security.denylist\n"
        "import recsys_core.security.sessions, recsys_core.security.uploads\n"
        "from recsys_core.security.forget import forget_user\n"
        "forget_user('nobody')\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['recsys_core', 'serving'], "
        "['recsys_core', 'models'], ['recsys_core', 'ranking'])]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
