"""Merchandising rules through the one list policy: pin, boost, block, by item or category,
per segment and date window; the versioned, role-checked, audited rule store."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.data.dataset import id_values
from recsys_core.data.schema import Dataset
from recsys_core.errors import AuthError, ConfigError
from recsys_core.evaluation import EvaluationConfig, evaluate
from recsys_core.merchandising import MerchandisingRule
from recsys_core.merchandising_offline import OfflineWindow, fit_offline_window, offline_effect
from recsys_core.merchandising_store import RuleStore, ServedRules, parse_rules
from recsys_core.models.registry import POPULARITY
from recsys_core.policy import (
    ListContext,
    ListPolicy,
    recommend_with_policy,
    top_with_policy,
)
from recsys_core.security import audit

ITEMS = [f"i{n}" for n in range(1, 31)]  # the model's order: i1 best ... i30
CATALOG = pd.DataFrame(
    {
        "item_id": ITEMS,
        "title": [f"Item {n}" for n in range(1, 31)],
        "category": ["gifts" if n % 5 == 0 else "kitchen" for n in range(1, 31)],
    }
)
SEGMENTS = pd.DataFrame(
    {"tenure": ["new", "returning"], "volume": ["heavy", "light"]},
    index=pd.Index(["u1", "u2"], name="user_id"),
)
#: u1 interacted with i2 and i29 (the model's seen filter removes them); bought i3.
SEEN = {"u1": ["i2", "i29"], "u2": []}
BOUGHT = pd.DataFrame({"user_id": ["u1"], "item_id": ["i3"]})
TODAY = date(2026, 12, 6)


class Ranked:
    """Every shopper gets i1..i30 in order (scores may be negative: ALS dot products)."""

    def recommend(self, user_ids: list[str], k: int, *, filter_seen: bool) -> pd.DataFrame:
        rows = []
        for user in user_ids:
            items = [i for i in ITEMS if not (filter_seen and i in SEEN.get(user, []))][:k]
            for rank, item in enumerate(items, start=1):
                rows.append((user, item, 1.0 - rank / 10, rank, False))
        return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank", "cold_start"])


def _context(**extra: object) -> ListContext:
    return ListContext(
        bought=BOUGHT,
        catalog=CATALOG,
        segments=SEGMENTS,
        today=TODAY,
        seen=lambda u: SEEN.get(u, []),
        **extra,  # type: ignore[arg-type]
    )


def _list(*rules: MerchandisingRule, user: str = "u1", repeats: str = "keep", k: int = 5):
    policy = ListPolicy(repeats, rules=rules)  # type: ignore[arg-type]
    reco = recommend_with_policy(Ranked(), [user], k, policy, _context())
    return reco["item_id"].tolist()


def _top(*rules: MerchandisingRule, user: str = "u1", repeats: str = "keep", k: int = 5):
    """The service's one-shopper path over the same model."""
    policy = ListPolicy(repeats, rules=rules)  # type: ignore[arg-type]
    native = repeats == "leave-out-seen"
    _, _, ids = top_with_policy(
        lambda depth: Ranked().recommend([user], depth, filter_seen=native),
        lambda frame: frame["item_id"].to_numpy(dtype=object),
        user,
        k,
        policy,
        _context(),
    )
    return ids.tolist()


def test_pin_puts_an_item_at_its_position_even_one_the_model_ranked_low() -> None:
    pin = MerchandisingRule("pin", ("i20",), position=2)
    assert _list(pin) == ["i1", "i20", "i2", "i3", "i4"]
    assert _top(pin) == _list(pin)
    # two pins on one position: the first rule gets it, the next takes the next free one
    other = MerchandisingRule("pin", ("i25",), position=2)
    assert _list(pin, other) == ["i1", "i20", "i25", "i2", "i3"]
    # a position beyond k does nothing
    assert _list(MerchandisingRule("pin", ("i20",), position=9)) == ITEMS[:5]


def test_a_pin_the_rest_of_the_policy_refuses_is_not_pinned() -> None:
    bought = MerchandisingRule("pin", ("i3",), position=1)  # u1 bought i3
    assert _list(bought, repeats="leave-out-bought") == ["i1", "i2", "i4", "i5", "i6"]
    seen = MerchandisingRule("pin", ("i29",), position=1)  # u1 viewed i29
    assert _list(seen, repeats="leave-out-seen") == ["i1", "i3", "i4", "i5", "i6"]
    assert _top(seen, repeats="leave-out-seen") == _list(seen, repeats="leave-out-seen")
    assert _list(seen, repeats="keep")[0] == "i29"  # kept when the policy keeps seen items
    blocked = (MerchandisingRule("block", ("i20",)), MerchandisingRule("pin", ("i20",), position=1))
    assert "i20" not in _list(*blocked)
    unknown = MerchandisingRule("pin", ("no-such-item",), position=1)
    assert _list(unknown) == ITEMS[:5]


def test_boost_multiplies_the_rank_normalised_score_before_the_cut() -> None:
    # i10 at position 10 with x3: 3/10 > 1/4, < 1/3 -> 4th
    boost = MerchandisingRule("boost", ("i10",), weight=2.0)
    assert _list(boost) == ["i1", "i2", "i3", "i10", "i4"]
    assert _top(boost) == _list(boost)
    # too far down to reach the top 5 (x2 at position 12: 2/12 < 1/5)
    assert _list(MerchandisingRule("boost", ("i12",), weight=1.0)) == ITEMS[:5]
    # a weight between -1 and 0 demotes: i1 x0.3 -> 0.3 < 1/3, > 1/4 -> 3rd
    demote = MerchandisingRule("boost", ("i1",), weight=-0.7)
    assert _list(demote) == ["i2", "i3", "i1", "i4", "i5"]
    with pytest.raises(ConfigError, match="weight"):
        MerchandisingRule("boost", ("i1",), weight=-1.0)


def test_rules_by_category() -> None:
    # every 5th item is a gift: block them, or pin the best gift first, or boost them
    block = MerchandisingRule("block", categories=("gifts",))
    assert _list(block, k=6) == ["i1", "i2", "i3", "i4", "i6", "i7"]
    pin = MerchandisingRule("pin", categories=("gifts",), position=1)
    assert _list(pin) == ["i5", "i1", "i2", "i3", "i4"]
    boost = MerchandisingRule("boost", categories=("gifts",), weight=1.0)
    assert _list(boost) == ["i1", "i2", "i5", "i3", "i4"]  # i5: 2/5 > 1/3; i10: 2/10 < 1/4
    assert _top(boost) == _list(boost)


def test_rules_limited_to_a_segment() -> None:
    heavy = MerchandisingRule("pin", ("i20",), position=1, segment="volume=heavy")
    assert _list(heavy, user="u1")[0] == "i20"  # u1 is a heavy buyer
    assert _list(heavy, user="u2") == ITEMS[:5]  # u2 is not
    assert _list(heavy, user="stranger") == ITEMS[:5]  # unknown segment: not covered
    block = MerchandisingRule("block", ("i1",), segment="tenure=returning")
    assert _list(block, user="u1")[0] == "i1" and _list(block, user="u2")[0] == "i2"
    with pytest.raises(ConfigError, match="column=value"):
        MerchandisingRule("block", ("i1",), segment="vip")


def test_a_rule_outside_its_dates_does_nothing() -> None:
    def pin(start: str | None, end: str | None) -> MerchandisingRule:
        return MerchandisingRule("pin", ("i20",), position=1, start=start, end=end)

    assert _list(pin("2026-12-01", "2026-12-24"))[0] == "i20"
    assert _list(pin("2026-12-06", "2026-12-06"))[0] == "i20"  # both ends inclusive
    assert _list(pin("2026-12-07", None)) == ITEMS[:5]  # not started
    assert _list(pin(None, "2026-12-05")) == ITEMS[:5]  # ended
    with pytest.raises(ConfigError, match="before it starts"):
        pin("2026-12-24", "2026-12-01")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        pin("next week", None)


def test_rules_round_trip_through_the_policy_and_are_named() -> None:
    rules = (
        MerchandisingRule("pin", ("i20",), position=1, segment="volume=heavy", end="2026-12-24"),
        MerchandisingRule("boost", categories=("gifts",), weight=0.5),
    )
    policy = ListPolicy("keep", rules=rules, merchandising="v2")
    assert policy.name == "keep + merchandising v2 (2 rules)"
    assert ListPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    assert rules[0].describe() == "pin i20 at 1 for volume=heavy until 2026-12-24"


# ---------------------------------------------------------------- the rule store


def _audit_rows(home: Path) -> list[dict[str, object]]:
    return audit.read(action="merchandising-save", home=home)


def test_every_save_is_a_new_version_and_the_latest_is_served(tmp_path: Path) -> None:
    store = RuleStore("demo", tmp_path)
    assert store.active() is None and store.version_names() == []
    first = (MerchandisingRule("block", ("i1",)),)
    when = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
    v1 = store.save(first, role="analyst", actor="app:ann", note="first", now=when)
    second = (*first, MerchandisingRule("pin", ("i20",), position=1))
    v2 = store.save(second, role="admin", actor="app:bob")
    assert (v1.version, v2.version) == ("v1", "v2")
    assert store.active_version() == "v2" and store.active().rules == second  # type: ignore[union-attr]
    history = store.history()
    assert [h.version for h in history] == ["v2", "v1"]
    assert history[1].saved_by == "app:ann" and history[1].saved_at == when
    assert history[1].rules == first  # earlier versions are kept as saved
    served = ServedRules("demo", tmp_path)
    policy = served.apply(ListPolicy("keep"))
    assert policy.rules == second and policy.merchandising == "v2"
    store.activate("v1", role="admin", actor="app:bob")  # a rollback
    assert served.apply(ListPolicy("keep")).rules == first
    # a policy naming its own rule set (a preview) is left alone
    assert served.apply(ListPolicy("keep", merchandising="draft")).rules == ()


def test_a_viewer_is_refused_and_saves_are_audited(tmp_path: Path) -> None:
    store = RuleStore("demo", tmp_path)
    rules = (MerchandisingRule("boost", ("i4",), weight=1.0),)
    with pytest.raises(AuthError, match="viewer may not save"):
        store.save(rules, role="viewer", actor="app:vic")
    with pytest.raises(AuthError):
        store.activate("v1", role=None, actor="app:nobody")
    assert store.version_names() == [] and _audit_rows(tmp_path) == []
    store.save(rules, role="analyst", actor="app:ann", note="xmas")
    (row,) = _audit_rows(tmp_path)
    assert row["actor"] == "app:ann"
    detail = json.loads(str(row["detail"]))
    assert detail["version"] == "v1" and detail["rules"] == ["boost i4 x2"]
    assert audit.verify(tmp_path).ok


def test_a_bad_rule_file_names_the_rule_and_field(tmp_path: Path) -> None:
    store = RuleStore("demo", tmp_path)
    store.save((MerchandisingRule("block", ("i1",)),), role="admin", actor="cli:me")
    path = tmp_path / "merchandising" / "demo" / "v1.json"
    data = json.loads(path.read_text())
    data["rules"][0].update(action="pin", position=0)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"rule 1 position: Input should be greater"):
        store.load("v1")
    with pytest.raises(ConfigError, match=r"rule 2: a pin rule needs at least one item"):
        parse_rules([{"action": "block", "item_ids": ["x"]}, {"action": "pin", "position": 1}])
    with pytest.raises(ConfigError, match="rule 1: colour: Extra inputs"):
        parse_rules([{"action": "block", "item_ids": ["x"], "colour": "red"}])


def test_positions_stay_whole_numbers_in_answers() -> None:
    reco = recommend_with_policy(
        Ranked(),
        ["u1", "u2"],
        4,
        ListPolicy("keep", rules=(MerchandisingRule("pin", ("i20",), position=2),)),
        _context(),
    )
    assert reco["rank"].tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    pinned = reco[reco["item_id"] == "i20"]  # not in the model's top 4: added, no score
    assert sorted(pinned["user_id"]) == ["u1", "u2"] and pinned["rank"].tolist() == [2, 2]
    assert pinned["score"].isna().all() and not pinned["cold_start"].any()


# ------------------------------------------------------------------ the offline money figure
@pytest.fixture(scope="module")
def offline_window(small_store: Dataset) -> OfflineWindow:
    """Popularity fitted on the recorded window's training part of the small store."""
    return fit_offline_window(small_store, POPULARITY, train_config={"seed": 42})


def test_the_offline_window_gives_the_recorded_money_per_shopper(
    small_store: Dataset, offline_window: OfflineWindow
) -> None:
    """Without rules, over every test shopper, the figure is evaluate's own revenue@10."""
    recorded = (
        evaluate(
            small_store,
            EvaluationConfig(models=[POPULARITY], seed=42, new_items_variant=False),
        )
        .models[POPULARITY]
        .metrics["revenue@10"]
    )
    assert offline_window.revenue_all == pytest.approx(recorded)
    effect = offline_effect(offline_window, (), (), sample_size=None)
    assert effect.before == pytest.approx(recorded) and effect.after == pytest.approx(recorded)
    assert effect.change == 0 and effect.change_ci == (0.0, 0.0) and effect.changed_lists == 0
    assert effect.shoppers == effect.test_shoppers > 0


def test_a_block_rule_moves_the_offline_money_through_the_list_policy(
    offline_window: OfflineWindow,
) -> None:
    """Blocking every item the test shoppers bought leaves no money on the lists; the sample
    is the stated size; the draft compares against the rules served now."""
    window = offline_window
    bought = tuple(sorted(set(id_values(window.purchases["item_id"]))))
    block_all = (MerchandisingRule("block", bought),)
    effect = offline_effect(window, (), block_all, sample_size=50, today=TODAY)
    assert effect.shoppers == 50 and effect.today == TODAY
    assert effect.before > 0 and effect.after == 0.0 and effect.changed_lists > 0
    low, high = effect.change_ci
    assert low <= effect.change <= high < 0
    # the draft "nothing" against the served block rule: the money comes back
    back = offline_effect(window, block_all, (), sample_size=50, today=TODAY)
    assert back.before == 0.0 and back.after == pytest.approx(effect.before)
    # a rule outside its dates does nothing
    later = (MerchandisingRule("block", bought, start=date(2030, 1, 1)),)
    idle = offline_effect(window, (), later, sample_size=50, today=TODAY)
    assert idle.change == 0 and idle.changed_lists == 0
