"""One shopper gets the same list from every path that produces one, under the same policy.

The five paths: the service call the Shopper page makes (``recommend_frame``), the REST API
(FastAPI's TestClient on the real app), the CLI's ``recommend --json``, the CLI's ``batch``
Parquet file and the bulk export (``top_k_for_shoppers``). The lab is trained with the
dataset's own settings (``saved_home``: no ``Preset()`` object), on a log with views, so
"leave out bought" and "leave out seen" differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys_core.business import top_k_for_shoppers
from recsys_core.cli import main
from recsys_core.policy import ListPolicy
from recsys_core.serving import RecommendationService, load_lab, resolve_version
from recsys_core.serving.api import create_app
from recsys_core.serving.batch import BatchTable

K = 5
#: CLI flags and API query of each repeat rule.
FLAGS = {
    "keep": (["--keep-bought"], {"repeats": "keep"}),
    "leave-out-bought": (["--filter-bought"], {"repeats": "leave-out-bought"}),
    "leave-out-seen": (["--filter-seen"], {"repeats": "leave-out-seen"}),
}


@pytest.mark.parametrize("model", ["als", "itemknn", "ranker"])
def test_five_paths_give_one_shopper_the_same_list(
    home_copy: Path, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = load_lab(resolve_version(None, None), tolerant=True)
    assert lab.bought is not None  # a log with views: bought and seen differ
    service = RecommendationService(lab)
    # a loopback client and server, as `serve` binds by default (off loopback a key is required)
    client = TestClient(
        create_app(lambda: service), base_url="http://127.0.0.1", client=("127.0.0.1", 50000)
    )
    bought = lab.bought.groupby("user_id").size()
    users = [u for u in lab.models[model].known_users() if bought.get(u, 0) >= 2][:2]
    ids = tmp_path / "users.txt"
    ids.write_text("\n".join(users), encoding="utf-8")
    for repeats, (flags, query) in FLAGS.items():
        policy = ListPolicy(repeats)  # type: ignore[arg-type]
        out = tmp_path / f"{model}-{repeats}.parquet"
        argv = ["batch", "--out", str(out), "--model", model, "--k", str(K), "--users", str(ids)]
        assert main([*argv, *flags]) == 0
        table = BatchTable.read(out)
        assert table.policy.same_lists(policy)
        batch = pd.read_parquet(out).astype({"user_id": str, "item_id": str})
        export = top_k_for_shoppers(service, users, K, model, policy)
        assert set(export["list_policy"]) == {policy.name}
        for user in users:
            frame, served_by, _ = service.recommend_frame(user, K, model, policy=policy)
            assert served_by == model and frame.attrs["list_policy"]["repeats"] == repeats
            page = frame["item_id"].tolist()
            assert len(page) == K

            answer = client.get(
                "/recommend", params={"user_id": user, "k": K, "model": model, **query}
            )
            assert answer.status_code == 200, answer.text
            api = answer.json()
            assert api["list_policy"]["repeats"] == repeats

            capsys.readouterr()
            assert (
                main(
                    ["recommend", "--user", user, "--k", str(K), "--model", model, "--json", *flags]
                )
                == 0
            )
            cli = json.loads(capsys.readouterr().out)
            assert cli["list_policy"]["repeats"] == repeats

            mine = batch[batch["user_id"] == user].sort_values("rank")
            lists = {
                "API": [i["item_id"] for i in api["items"]],
                "recommend": [i["item_id"] for i in cli["items"]],
                "batch": mine["item_id"].tolist(),
                "bulk export": export[export["user_id"] == user]["item_id"].tolist(),
            }
            for path, items in lists.items():
                assert items == page, f"{path} differs from the Shopper page ({model}, {repeats})"
        if repeats != "keep":  # the policy really removed something for these shoppers
            kept = service.recommend_frame(users[0], K, model, policy=ListPolicy("keep"))[0]
            mine = service.recommend_frame(users[0], K, model, policy=policy)[0]
            owned = set(lab.bought[lab.bought["user_id"] == users[0]]["item_id"].astype(str))
            assert not owned & set(mine["item_id"]) or repeats == "keep"
            assert kept["item_id"].tolist() != mine["item_id"].tolist() or not owned & set(
                kept["item_id"]
            )


@pytest.mark.parametrize("model", ["als", "ranker"])
def test_business_filters_give_the_same_list_on_every_path(
    home_copy: Path, model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The business filters (category, price band, items bought in the last N days) are part
    of the one list policy on every path, not only on the Shopper page."""
    from recsys_core.policy import BusinessFilters

    lab = load_lab(resolve_version(None, None), tolerant=True)
    service = RecommendationService(lab)
    catalog = lab.catalog
    category = str(catalog["category"].value_counts().index[0])
    top = float(catalog["price"].quantile(0.8))
    filters = BusinessFilters(categories=(category,), max_price=top, exclude_bought_days=30)
    policy = service.resolve_policy("lab-rule").with_filters(filters)
    client = TestClient(
        create_app(lambda: service), base_url="http://127.0.0.1", client=("127.0.0.1", 50000)
    )
    users = [str(u) for u in lab.models[model].known_users()[:2]]
    ids = tmp_path / "users.txt"
    ids.write_text("\n".join(users), encoding="utf-8")
    flags = ["--category", category, "--max-price", str(top), "--hide-bought-days", "30"]
    out = tmp_path / "filtered.parquet"
    argv = ["batch", "--out", str(out), "--model", model, "--k", str(K), "--users", str(ids)]
    assert main([*argv, *flags]) == 0
    assert BatchTable.read(out).policy.same_lists(policy)
    batch = pd.read_parquet(out).astype({"user_id": str, "item_id": str})
    export = top_k_for_shoppers(service, users, K, model, policy)
    in_category = set(catalog.loc[catalog["category"].astype(str) == category, "item_id"])
    for user in users:
        frame = service.recommend_frame(user, K, model, policy=policy)[0]
        page = frame["item_id"].tolist()
        assert page and set(page) <= in_category
        assert (frame["item_id"].map(catalog.set_index("item_id")["price"]) <= top).all()
        query = {"category": category, "max_price": top, "hide_bought_days": 30}
        answer = client.get("/recommend", params={"user_id": user, "k": K, "model": model, **query})
        assert answer.status_code == 200, answer.text
        assert answer.json()["list_policy"]["categories"] == [category]
        capsys.readouterr()
        recommend = ["recommend", "--user", user, "--k", str(K), "--model", model, "--json"]
        assert main([*recommend, *flags]) == 0
        cli = json.loads(capsys.readouterr().out)
        lists = {
            "API": [i["item_id"] for i in answer.json()["items"]],
            "recommend": [i["item_id"] for i in cli["items"]],
            "batch": batch[batch["user_id"] == user].sort_values("rank")["item_id"].tolist(),
            "bulk export": export[export["user_id"] == user]["item_id"].tolist(),
        }
        for path, items in lists.items():
            assert items == page, f"{path} differs from the Shopper page ({model}, filtered)"
    refused = client.get("/recommend", params={"user_id": users[0], "min_price": 5, "max_price": 1})
    assert refused.status_code == 400 and "above max_price" in refused.text
