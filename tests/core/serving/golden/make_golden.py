"""Record the service's answers on a small lab, so that a change to the service that alters
an answer shows up as a failing test (``test_service_golden.py``).

Run from the repository root after a deliberate change of answers (it rewrites
``answers.json`` next to this file, and the commit says why the answers changed)::

    python tests/core/serving/golden/make_golden.py

The lab is trained on the ``small_store`` fixture's data (300 shoppers, 150 items) with the
tests' small ranker. Training is deterministic (seeded, single-threaded stage one and
classifier); ``fingerprint`` holds checksums of the trained models: on the recording machine
the answers must match to the last digit, on a machine whose BLAS trains slightly different
factors they must match within the tolerances of the test.

History: the first recording (before the hot path was rewritten) came from a frozen copy of
the original service; the hot path matched it, with one deliberate change (``filter_seen``
leaves out *bought* items), and the copy was deleted once the recorded file held those
answers.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[3]), str(HERE.parents[2])]  # the repo, and tests/ (conftest)

from conftest import SMALL_RANKER  # noqa: E402

from recsys_core.data.demo_store import generate_demo_store  # noqa: E402
from recsys_core.data.schema import Dataset  # noqa: E402
from recsys_core.policy import ListPolicy  # noqa: E402
from recsys_core.serving import TrainedLab  # noqa: E402
from recsys_core.training import TrainConfig, train_lab  # noqa: E402

MODELS = ("popularity", "itemknn", "bpr", "als", "ranker")


def questions(service: Any) -> dict[str, list[dict[str, Any]]]:
    """The recorded questions: who, which model, k, filter; similar items; explanations."""
    lab = service.lab
    users = list(lab.models["als"].users_.external_ids[::25])  # 12 known shoppers
    users += ["nobody", "U9999"]  # unknown shoppers: the cold-start answer
    items = list(lab.models["als"].items_.external_ids[::15])  # 10 items
    recommend = [
        {"user_id": str(u), "k": k, "model": m, "filter_seen": f}
        for m in MODELS
        for u in users
        for k, f in ((10, False), (3, True))
    ]
    similar = [
        {"item_id": str(i), "k": 5, "model": m}
        for m in ("popularity", "itemknn", "bpr", "als")
        for i in items
    ]
    return {"recommend": recommend, "similar": similar}


def _recommend(service: Any, q: dict[str, Any]) -> dict[str, Any]:
    """One recorded question, asked with the list policy of its flag."""
    policy = ListPolicy.from_flags(q["filter_seen"])
    return service.recommend(q["user_id"], q["k"], q["model"], policy=policy)


def answer_all(service: Any, asked: dict[str, list[dict[str, Any]]]) -> dict:
    """Every recorded question's answer, in order (the version stamp left out: it is a time)."""
    answers = {
        "recommend": [_recommend(service, q) for q in asked["recommend"]],
        "similar": [service.similar(q["item_id"], q["k"], q["model"]) for q in asked["similar"]],
    }
    return {
        kind: [
            {k: v for k, v in answer.items() if k not in ("model_version", "list_policy")}
            for answer in rows
        ]
        for kind, rows in answers.items()
    }


def train_golden_lab() -> TrainedLab:
    """The small lab the answers are recorded on (deterministic)."""
    events, catalog = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    dataset = Dataset("demo-small", events, catalog, source="test fixture")
    config = TrainConfig(models=list(MODELS), model_params={"ranker": dict(SMALL_RANKER)})
    return train_lab(dataset, config)


def fingerprint(lab: TrainedLab) -> dict[str, str]:
    """Checksums of what the answers depend on: factors, similarities, the boosted trees."""
    model = lab.models["ranker"].purchase_model_
    boosters = getattr(model, "boosters_", None) or [model.booster_]
    als, bpr = lab.models["als"], lab.models["bpr"]
    parts = {
        "als": als.item_factors_.tobytes() + als.user_factors_.tobytes(),
        "bpr": bpr.item_factors_.tobytes() + bpr.user_factors_.tobytes(),
        "itemknn": lab.models["itemknn"].similarity_.data.tobytes(),
        "booster": "".join(b.model_to_string() for b in boosters).encode(),
    }
    return {name: hashlib.sha256(blob).hexdigest()[:16] for name, blob in parts.items()}


def main() -> None:
    from recsys_core.serving import RecommendationService

    lab = train_golden_lab()
    service = RecommendationService(lab)
    asked = questions(service)
    payload = {
        "fingerprint": fingerprint(lab),
        "questions": asked,
        "answers": answer_all(service, asked),
    }
    lines = json.dumps(payload, separators=(",", ":"))
    (HERE / "answers.json").write_text(lines + "\n")
    print(f"wrote {HERE / 'answers.json'}")


if __name__ == "__main__":
    main()
