"""A lab saved by the previous release still loads and serves; a lab of an unknown format
is refused with a message to retrain.

``tests/data/legacy_lab_6f70d7a.tar.gz`` is the ``models/`` folder that commit 6f70d7a (the
release before the list policy, model registry and settings tree) wrote with::

    python -c "from recsys_core.data.demo_store import generate_demo_store; \\
      e, _ = generate_demo_store(n_users=120, n_items=60, n_events=6_000, seed=3); \\
      e.to_csv('legacy_events.csv', index=False)"
    RECSYS_HOME=legacyhome python -m recsys_core.cli train --data legacy_events.csv
    tar czf legacy_lab_6f70d7a.tar.gz -C legacyhome models
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from recsys_core.errors import ArtifactError
from recsys_core.serving import RecommendationService, load_lab, resolve_version

ARCHIVE = Path(__file__).resolve().parents[2] / "data" / "legacy_lab_6f70d7a.tar.gz"


@pytest.fixture()
def legacy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    return tmp_path


def test_a_lab_saved_by_the_previous_release_serves_every_model(legacy_home: Path) -> None:
    lab = load_lab(resolve_version(None, None, home=legacy_home))
    assert not getattr(lab, "broken", None)
    service = RecommendationService(lab)
    user = lab.models["als"].known_users()[0]
    for model in lab.models:
        frame, served_by, _ = service.recommend_frame(user, 5, model, policy="lab-rule")
        assert served_by == model and len(frame) == 5, model
    item = str(frame["item_id"].iloc[0])
    why = service.explain_served(user, item, "ranker")
    assert why["shap"] and why["contributions"]
    assert service.explain_served(user, item, "als")["reasons_from"] == "als"


def test_a_lab_of_an_unknown_format_is_refused_with_a_message_to_retrain(
    legacy_home: Path,
) -> None:
    folder = resolve_version(None, None, home=legacy_home)
    manifest_path = next(folder.glob("manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format version 99.*retrain"):
        load_lab(folder)
