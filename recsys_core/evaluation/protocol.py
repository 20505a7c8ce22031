"""The evaluation protocol's pieces: test windows, relevant items, the repeat rule that
decides what lists may contain, revenue of the test period.

The protocol (see docs/evaluation-protocol.md): split the log (temporal with a 30-day test
period when it has timestamps, a seeded per-user split otherwise; ``--folds N`` cuts N
consecutive windows, :func:`recsys_core.split.rolling_origin_splits`); test users are users
with training history and at least one *relevant* event (a purchase, by default) in the test
period; their relevant items are the items they bought then. Whether lists keep the items a
shopper already *bought* follows the training data's repeat rate
(:func:`recsys_core.repeats.repeat_profile`) unless the settings, ``filter_bought`` or
``filter_seen`` say otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.evaluation.config import EvaluationConfig
from recsys_core.repeats import Removes, bought_pairs, bought_rule, repeat_profile
from recsys_core.split import Split, rolling_origin_splits


def relevant_items(split: Split, relevant_events: Sequence[str]) -> pd.DataFrame:
    """``user_id, item_id`` pairs that count as hits, deduplicated.

    Falls back to every test event when the log has none of ``relevant_events`` in its
    test period (e.g. a views-only log).
    """
    test = split.test
    mask = test[Columns.EVENT].isin(list(relevant_events)).to_numpy()
    chosen = test[mask] if mask.any() else test
    pairs = pd.DataFrame(
        {
            Columns.USER: chosen[Columns.USER].to_numpy(dtype=object),
            Columns.ITEM: chosen[Columns.ITEM].to_numpy(dtype=object),
        }
    )
    return pairs.drop_duplicates(ignore_index=True)


def fold_splits(
    events: pd.DataFrame, config: EvaluationConfig
) -> tuple[list[Split], tuple[str, ...]]:
    """The folds (oldest first; one unless ``config.folds``) and the relevant event types.

    Test users are those with one of ``config.relevant_events`` in the test period. When the
    last test period has none of them (e.g. a views-only log), the folds are cut again so
    that any test-period event qualifies and every event type counts as relevant.
    """
    wanted = tuple(config.relevant_events)

    def cut(test_events: tuple[str, ...] | None) -> list[Split]:
        return rolling_origin_splits(
            events,
            config.folds,
            test_days=config.test_days,
            cutoff=config.cutoff,
            test_events=test_events,
            test_fraction=config.test_fraction,
            seed=config.seed,
        )

    splits = cut(wanted)
    split = splits[-1]
    later = pd.concat([split.test[Columns.EVENT], split.cold_test.get(Columns.EVENT)])
    if later.isin(list(wanted)).any() or split.test.empty and later.empty:
        return splits, wanted
    if split.method == "random":  # the random split keeps every user; only relevance changes
        return splits, _event_types(events)
    return cut(None), _event_types(events)


def _event_types(events: pd.DataFrame) -> tuple[str, ...]:
    return tuple(sorted(str(e) for e in pd.unique(events[Columns.EVENT])))


def seen_pairs(train: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.USER: train[Columns.USER].to_numpy(dtype=object),
            Columns.ITEM: train[Columns.ITEM].to_numpy(dtype=object),
        }
    ).drop_duplicates(ignore_index=True)


def anti_join(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    keys = [Columns.USER, Columns.ITEM]
    left = frame.assign(**{c: canonical_ids(frame[c]) for c in keys})
    merged = left.merge(pairs.assign(_seen=True), on=keys, how="left")
    return frame[merged["_seen"].isna().to_numpy()]


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


@dataclass(frozen=True)
class ListRule:
    """What the main lists may contain, decided once per split, and why."""

    #: ``seen`` (every seen item left out), ``bought`` (bought items left out, viewed items
    #: stay) or ``nothing`` (repurchases count).
    removes: Removes
    #: The JSON block ``split.already_bought``: which rule applied and why.
    description: dict[str, Any]
    #: One line for the notes.
    note: str
    #: The training part's bought pairs (for the ``leave-out-bought`` list policy).
    bought: pd.DataFrame

    @property
    def filter_seen(self) -> bool:
        """Lists leave out already-bought items."""
        return self.removes != "nothing"


def list_rule(
    config: EvaluationConfig, settings: Any, train: pd.DataFrame, seen: pd.DataFrame
) -> ListRule:
    """The repeat rule of this split: the caller's flag, else the settings, else the
    training data's repeat rate (:func:`recsys_core.repeats.bought_rule`)."""
    repeats = repeat_profile(train)
    bought = bought_pairs(train)
    # purchase-only log (or none at all): bought == seen, the models' own filter is the same
    bought_is_seen = len(bought) == len(seen)
    would = "to remove" if repeats.filter_seen else "to keep"
    seen_rule: dict[str, Any]
    removes: Removes
    if config.filter_seen is True:
        removes = "seen"
        seen_rule = {
            "source": "flag",
            "why": "set by the caller (--filter-seen: every item the shopper interacted with "
            f"is removed); the training data's repeat rate alone would have chosen {would} "
            "already-bought items",
        }
    else:
        # one owner of the rule's order (request, settings, repeat rate): the service's too
        asked = config.filter_bought
        if asked is None and config.filter_seen is False:
            asked = False
        # seen, bought or nothing: the service's and the app's rule too
        rule = bought_rule(asked, settings.preset.filter_seen, repeats.to_dict())
        removes = rule.removes
        if rule.source == "request":
            flag = (
                "--keep-seen"
                if config.filter_bought is None
                else ("--filter-bought" if config.filter_bought else "--keep-bought")
            )
            seen_rule = {
                "source": "flag",
                "why": f"set by the caller ({flag}); the training data's repeat rate alone "
                f"would have chosen {would} already-bought items",
            }
        elif rule.source == "settings":
            seen_rule = {"source": "settings", "why": settings.repeat_reason}
        else:
            seen_rule = {"source": rule.source, "why": rule.why}
    if removes == "bought" and bought_is_seen:
        removes = "seen"  # the same items: keep the models' own (identical) filter
    filter_seen = removes != "nothing"  # lists leave out already-bought items
    lists_without_seen = removes == "seen"
    seen_rule = {
        "filter_seen": filter_seen,
        "removes": "bought" if removes == "seen" and bought_is_seen else removes,
        "lists_without_seen": lists_without_seen,
        **seen_rule,
        "repeat": repeats.to_dict(),
    }
    removed_what = {
        "seen": "already-bought items removed from lists"
        + ("" if bought_is_seen else " with every item the shopper interacted with")
        + ": ",
        "bought": "already-bought items (purchases before the cutoff) removed from lists; "
        "viewed, carted and favourited items stay: ",
        "nothing": "already-bought items kept in lists: ",
    }[removes]
    return ListRule(removes, seen_rule, removed_what + str(seen_rule["why"]), bought)


def test_purchase_revenue(test: pd.DataFrame) -> pd.DataFrame | None:
    """``user_id, item_id, revenue`` (quantity x price) of the test-period purchases.

    ``None`` when the log has no prices. Purchases without a price add 0; without a
    quantity column every purchase is one unit.
    """
    if Columns.PRICE not in test.columns:
        return None
    bought = test[(test[Columns.EVENT] == "purchase").to_numpy()]
    price = bought[Columns.PRICE].to_numpy(dtype=np.float64, na_value=np.nan)
    quantity = (
        bought[Columns.QUANTITY].to_numpy(dtype=np.float64, na_value=1.0)
        if Columns.QUANTITY in bought.columns
        else np.ones(len(bought))
    )
    return pd.DataFrame(
        {
            Columns.USER: bought[Columns.USER].to_numpy(dtype=object),
            Columns.ITEM: bought[Columns.ITEM].to_numpy(dtype=object),
            "revenue": np.nan_to_num(price * quantity, nan=0.0),
        }
    )


def cannot_run(model: str, events: pd.DataFrame) -> str | None:
    """Why ``model`` cannot be trained on this log (``None`` when it can).

    Only requirements known before fitting are checked here (the model class's
    :meth:`~recsys_core.models.interface.Recommender.cannot_train_on`: e.g. the ranker needs
    timestamps); a model whose fit finds the log unusable (e.g. no purchases for the ranker's
    labels) is skipped by :func:`evaluate` with the fit's own message.
    """
    from recsys_core.models import model_class

    return model_class(model).cannot_train_on(events)


def params_of(model: Any) -> dict[str, Any]:
    cfg = getattr(model, "config", None)
    if isinstance(cfg, BaseModel):
        return cfg.model_dump(mode="json")
    return {}
