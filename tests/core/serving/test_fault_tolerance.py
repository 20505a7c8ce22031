"""Damaged models: verify names them, answers fall back (degraded), a restore heals them live."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from recsys_core.cli import main
from recsys_core.errors import ArtifactError
from recsys_core.serving import backup, registry
from recsys_core.serving.lab import load_lab
from recsys_core.serving.live import LiveService


def _active(home: Path) -> Path:
    return registry.resolve_version(home=home)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _recommend_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["recommend", "--user", "U001", "--k", "10", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _damage_heal_cycle(
    home: Path, tmp_path: Path, capsys, damage, part: str, bad_file: str, model: str
) -> None:
    """Back up, damage, check verify + degraded answers, restore, check healthy answers."""
    archive = tmp_path / "backup.tar.zst"
    backup.backup(archive, home)
    live = LiveService(check_interval=0)
    healthy = live.recommend("U001", 10, model, policy="lab-rule")
    assert not healthy["degraded"] and healthy["model"] == model

    damage(_active(home))
    capsys.readouterr()
    assert main(["registry", "verify"]) == 1
    assert bad_file in capsys.readouterr().out

    cli_answer = _recommend_json(capsys, "--model", model)  # a fresh process loads per model
    live_answer = live.recommend(
        "U001", 10, model, policy="lab-rule"
    )  # the running service notices the damage
    for answer in (cli_answer, live_answer):
        assert len(answer["items"]) == 10
        assert answer["degraded"] is True and answer["model"] != model
        assert part in answer["reason"] and "broken" in answer["reason"]
    assert part in live.lab_broken()

    assert main(["registry", "restore", str(archive)]) == 0
    healed = live.recommend("U001", 10, model, policy="lab-rule")  # same process, no restart
    assert not healed["degraded"] and healed["model"] == model
    assert healed["items"] == healthy["items"]
    assert live.reloads == 3 and live.stats()["degraded_share"] == pytest.approx(1 / 3, abs=1e-3)


def test_changed_byte_in_als_factors(home_copy: Path, tmp_path: Path, capsys) -> None:
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: _flip_byte(v / "als" / "arrays.npz"),
        "als",
        "als/arrays.npz",
        "als",
    )


def _booster(home: Path) -> str:
    """The ranker's (first) LightGBM model file, relative to the version folder."""
    folder = _active(home)
    return (
        next((folder / "ranker" / "purchase_model").glob("booster*.txt"))
        .relative_to(folder)
        .as_posix()
    )


def test_changed_byte_in_the_rankers_booster(home_copy: Path, tmp_path: Path, capsys) -> None:
    booster = _booster(home_copy)
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: _flip_byte(v / booster),
        "ranker",
        booster,
        "ranker",
    )


def test_deleted_model_folder(home_copy: Path, tmp_path: Path, capsys) -> None:
    _damage_heal_cycle(
        home_copy,
        tmp_path,
        capsys,
        lambda v: shutil.rmtree(v / "itemknn"),
        "itemknn",
        "itemknn/arrays.npz",
        "itemknn",
    )


def test_broken_ranker_falls_back_to_als_then_itemknn(home_copy: Path) -> None:
    folder = _active(home_copy)
    _flip_byte(folder / _booster(home_copy))
    _flip_byte(folder / "als" / "arrays.npz")
    lab = load_lab(folder, tolerant=True)
    assert set(lab.broken) == {"ranker", "als"}
    from recsys_core.serving import RecommendationService

    answer = RecommendationService(lab).recommend("U001", 10, "ranker", policy="lab-rule")
    assert answer["model"] == "itemknn" and answer["degraded"] and "ranker" in answer["reason"]
    with pytest.raises(ArtifactError, match="als/arrays.npz: checksum mismatch"):
        lab.model("als")


def test_everything_broken_still_answers_from_stored_counts(home_copy: Path) -> None:
    folder = _active(home_copy)
    for name in ("ranker", "als", "itemknn", "popularity"):
        shutil.rmtree(folder / name)
    _flip_byte(folder / "catalog.parquet")
    lab = load_lab(folder, tolerant=True)
    assert set(lab.broken) == {"ranker", "als", "itemknn", "popularity", "catalog"}
    from recsys_core.serving import RecommendationService

    answer = RecommendationService(lab).recommend("U001", 10, "ranker", policy="lab-rule")
    assert answer["model"] == "popularity" and answer["degraded"]
    assert len(answer["items"]) == 10


def test_automatic_rollback_when_allowed(home_copy: Path) -> None:
    newer = _active(home_copy)
    older = registry.version_names("demo-small", home_copy)[1]
    _flip_byte(newer / "als" / "arrays.npz")
    off = LiveService(check_interval=0)
    assert off.service().lab.version == newer.name and "als" in off.lab_broken()
    on = LiveService(check_interval=0, auto_rollback=True)
    answer = on.recommend("U001", 10, "als", policy="lab-rule")
    assert answer["model_version"] == older and not answer["degraded"]
    assert registry.active_version("demo-small", home_copy) == older
    last = registry.activation_history("demo-small", home_copy)[0]
    assert last["why"] == "automatic" and "als" in last["note"]
    # the other service follows the pointer change too
    assert off.recommend("U001", 10, "als", policy="lab-rule")["model_version"] == older


def test_live_service_follows_rollback_and_retrain(home_copy: Path) -> None:
    live = LiveService(check_interval=0)
    first = live.service().lab.version
    registry.rollback(home=home_copy)
    assert live.service().lab.version != first
    registry.rollback("demo-small", first, home_copy)
    assert live.service().lab.version == first


# ------------------------------------------------------------------ issue 23: the API fails closed


def _client(provider, address: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    """An in-process client of the API with the given client (and server) address."""
    import httpx

    from recsys_core.serving.api import create_app

    app = create_app(provider)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    host = "127.0.0.1" if address == "127.0.0.1" else "203.0.113.9"
    return app, httpx.AsyncClient(transport=transport, base_url=f"http://{host}:8000")


def _run(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coro)


def test_a_server_serves_the_dataset_it_announced(home_copy: Path) -> None:
    """Training another dataset moves models/LAST; a running service stays on its dataset."""
    ds = registry.models_root(home_copy) / "demo-small"
    version = registry.active_version("demo-small", home_copy)
    assert version is not None
    live = LiveService(check_interval=0)  # no dataset named: the one LAST names now
    assert live.service().lab.path.parent.name == "demo-small"
    other = registry.models_root(home_copy) / "other-shop"
    shutil.copytree(ds / version, other / version)
    registry.activate_version("other-shop", version, home_copy)
    assert registry.last_pointer(home_copy) == ("other-shop", version)
    assert live.refresh().lab.path.parent.name == "demo-small"
    assert live.dataset == "demo-small"


def test_damaged_pointers_degrade_answers_with_the_reason_never_500(home_copy: Path) -> None:
    live = LiveService(check_interval=0)
    app, client = _client(live.service)
    active = registry.models_root(home_copy) / "demo-small" / "ACTIVE"

    async def go() -> None:
        async with client:
            ok = await client.get("/recommend", params={"user_id": "U001", "k": 3})
            assert ok.status_code == 200 and not ok.json()["degraded"]
            active.write_bytes(b"\x00\xffgarbage")
            for _ in range(20):
                answer = await client.get("/recommend", params={"user_id": "U001", "k": 3})
                assert answer.status_code == 200
                body = answer.json()
                assert body["degraded"] and "damaged" in body["reason"]
                assert "registry rollback" in body["reason"]
            registry.rollback("demo-small", home=home_copy)  # repairs the pointer
            healed = await client.get("/recommend", params={"user_id": "U001", "k": 3})
            assert not healed.json()["degraded"]

    _run(go())
    # a fresh server with a damaged LAST: 503 with the reason, not 500
    (registry.models_root(home_copy) / "LAST").write_bytes(b"\x00\xffgarbage")
    fresh = LiveService(check_interval=0)
    _, client = _client(fresh.service)

    async def fresh_start() -> None:
        async with client:
            answer = await client.get("/recommend", params={"user_id": "U001"})
            assert answer.status_code == 503 and "damaged" in answer.json()["detail"]

    _run(fresh_start())


def test_a_reload_runs_off_the_event_loop_while_the_old_version_answers(
    home_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from recsys_core.serving import live as live_module

    slow_load = live_module.load_lab

    def load_slowly(folder: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        time.sleep(1.5)
        return slow_load(folder, **kwargs)  # type: ignore[arg-type]

    live = LiveService(check_interval=0, background=True)
    first = live.service().lab.version
    monkeypatch.setattr(live_module, "load_lab", load_slowly)
    _, client = _client(live.service)

    async def go() -> tuple[list[float], set[str]]:
        seen, latencies = set(), []
        async with client:
            registry.rollback(home=home_copy)
            start = time.perf_counter()
            while time.perf_counter() - start < 4:
                t0 = time.perf_counter()
                answer = await client.get("/recommend", params={"user_id": "U001", "k": 3})
                latencies.append(time.perf_counter() - t0)
                assert answer.status_code == 200
                seen.add(answer.json()["model_version"])
                # a client on a network waits between answers; the in-memory transport never
                # does, and a loop that never waits keeps the GIL from the reload thread (each
                # file it opens waits a switch interval), so the load took minutes here
                await asyncio.sleep(0.005)
        return latencies, seen

    latencies, seen = _run(go())
    live.wait_for_reload()
    assert first in seen and len(seen) == 2  # the old version answered, then the new one
    assert max(latencies) < 1.0  # no request waited for the 1.5 s load


def test_explain_is_400_without_a_purchase_model_and_names_a_broken_one(home_copy: Path) -> None:
    from recsys_core.serving import RecommendationService

    folder = _active(home_copy)
    lab = load_lab(folder, tolerant=True)
    lab.models.pop("ranker")
    untrained = RecommendationService(lab)
    _, client = _client(lambda: untrained)

    async def ask(c) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        async with c:
            r = await c.get("/explain", params={"user_id": "U001", "item_id": "P001"})
            return r.status_code, r.json()["detail"]

    status, detail = _run(ask(client))
    assert status == 400 and "train with the 'ranker'" in detail
    _flip_byte(folder / _booster(home_copy))
    broken = RecommendationService(load_lab(folder, tolerant=True))
    _, client = _client(lambda: broken)
    status, detail = _run(ask(client))
    assert status == 503 and "broken" in detail and "not trained" not in detail


def test_search_over_a_damaged_catalog_degrades(home_copy: Path) -> None:
    from recsys_core.serving import RecommendationService

    folder = _active(home_copy)
    _flip_byte(folder / "catalog.parquet")
    lab = load_lab(folder, tolerant=True)
    assert "catalog" in lab.broken
    lab.catalog = lab.catalog.assign(title="")  # nothing searchable (the "empty vocabulary")
    service = RecommendationService(lab)
    _, client = _client(lambda: service)

    async def go() -> None:
        async with client:
            for params in ({"q": "mug"}, {"q": "mug", "user_id": "U001"}):
                r = await client.get("/search", params=params)
                assert r.status_code == 200, r.text
                assert r.json()["degraded"] and "no searchable titles" in r.json()["reason"]
                assert r.json()["items"] == []

    _run(go())
