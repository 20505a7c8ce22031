"""The app's first page does not import LightGBM, scikit-learn or numba (issue 24).

On a first start the Overview page trains and serves the instant models (popularity,
item-kNN); the purchase model, its compiled trees, the evaluation runner and product search
come later (the background training is a child process). Importing their libraries with
the page cost about a CPU second of a first page that must come up in 10 s on two cores, so
they are imported where they are used. This test runs, in a fresh interpreter, what the
first page runs: every module that ``app.py`` and the Overview page import, the choice of the
quick models, their training and saving (``train_version``, as ``ui.resources`` calls it),
and a recommendation from the service, then checks that none of those libraries was loaded.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.conftest import run_python

ROOT = Path(__file__).resolve().parents[2]
#: What ``streamlit run app.py`` runs first: the router, then the default page.
FIRST_PAGE_FILES = ("app.py", "app_pages/overview.py")
#: Libraries only the purchase model, its compiled trees, evaluation and search need.
DEFERRED = ("lightgbm", "sklearn", "numba")

_SCRIPT = """
import importlib, json, sys
sys.path.insert(0, {root!r})
for module in {modules!r}:
    importlib.import_module(module)

from recsys_core.data.demo_store import generate_demo_store
from recsys_core.data.schema import Dataset
from recsys_core.models.registry import ITEMKNN, RANKER
from recsys_core.policy import LAB_RULE
from recsys_core.serving import RecommendationService
from recsys_core.training_job import train_version
from ui.resources import slow_models, wanted_models

events, catalog = generate_demo_store(n_users=200, n_items=80, n_events=6_000, seed=1)
dataset = Dataset("first-page", events, catalog)
models = wanted_models(dataset)
assert RANKER in models, models  # the purchase model is wanted, and left to the background
quick = [m for m in models if m not in slow_models(models)]
lab, _ = train_version(
    dataset, quick, activate=True, actor="test", headline=False, background=False
)
service = RecommendationService(lab)
user = str(events["user_id"].iloc[0])
answer = service.recommend(user, 5, ITEMKNN, policy=LAB_RULE)
assert answer["items"], answer
loaded = [m for m in {deferred!r} if m in sys.modules]
print(json.dumps({{"ranker": RANKER in quick, "loaded": loaded}}))
"""


def _imported_modules(path: Path) -> list[str]:
    """The modules a page file imports (absolute imports, at any depth of the file)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            # ``from ui import auth``: the names may be modules themselves
            found.extend(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists()
            )
    return list(dict.fromkeys(m for m in found if m != "__future__"))


def test_the_first_page_does_not_import_the_purchase_models_libraries(tmp_path: Path) -> None:
    modules = [m for f in FIRST_PAGE_FILES for m in _imported_modules(ROOT / f)]
    assert "ui.resources" in modules and "recsys_core.models" in modules
    script = _SCRIPT.format(root=str(ROOT), modules=modules, deferred=DEFERRED)
    env = {"RECSYS_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    done = run_python(script, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["ranker"]  # trained in the background, not by the first page
    assert result["loaded"] == [], (
        f"the first page imported {result['loaded']}: import them where they are used "
        "(python -X importtime shows which module brings them)"
    )
