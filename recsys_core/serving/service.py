"""The recommendation service used by the CLI and the app.

Answers speak external ids and the shop's words (titles), in the JSON shapes of DESIGN.md.
A request never crashes on an unknown shopper: the **fallback chain** is

1. ``ranker`` — calibrated purchase probabilities (needs a shopper with history);
2. ``als`` — collaborative filtering scores (needs a known shopper);
3. ``itemknn`` — item-to-item neighbours of the shopper's history;
4. ``popularity`` — the most bought items, for anyone (rebuilt from the stored training
   counts when its own files are damaged, so there is always an answer).

Each answer says which step served it: ``degraded`` is true and ``reason`` says why whenever
the requested model could not answer — including a model left out because its files are
damaged (:attr:`TrainedLab.broken`, named in the reason).

Answers come from the hot path (:mod:`recsys_core.serving.hot_path`): arrays prepared once per
model, the JSON or DataFrame built only at the edge, and whole answers (with purchase
probabilities) cached per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids
from recsys_core.errors import RecsysError, UnknownUserError
from recsys_core.merchandising_store import RuleSet, ServedRules
from recsys_core.models.registry import ALS, cold_start_model, fallback_chain
from recsys_core.policy import (
    LAB_RULE,
    ListContext,
    ListPolicy,
    PolicyChoice,
    top_with_policy,
    uses_model_seen_filter,
)
from recsys_core.repeats import BoughtRule, bought_rule
from recsys_core.security.denylist import refuse_forgotten
from recsys_core.serving.answers import AnswerCache, RecommendationAnswer
from recsys_core.serving.batch import BatchTable, lab_context
from recsys_core.serving.compression import ServingConfig, with_codec
from recsys_core.serving.hot_path import (
    PreparedRanker,
    PreparedRecommender,
    TopItems,
    check_k,
    titles_for,
)
from recsys_core.serving.item_answers import ItemAnswers
from recsys_core.serving.lab import TrainedLab
from recsys_core.serving.probabilities import json_number

#: The fallback chain, first to last (the registry's fallback ranks).
FALLBACK_CHAIN: tuple[str, ...] = fallback_chain()

#: Answers kept per service (model, shopper, k, filter): a lab version never changes once
#: trained, so a repeated question (the app redrawing a page) is answered from memory.
RECOMMENDATION_CACHE_SIZE = 1024


class RecommendationService(ItemAnswers):
    """Recommendations, similar items, explanations and search over one :class:`TrainedLab`."""

    def __init__(self, lab: TrainedLab, config: ServingConfig | None = None) -> None:
        self.lab = lab
        self.config = config or ServingConfig.from_env()
        catalog = lab.catalog.copy()
        # a saved lab's catalog: read from an artifact, so its ids pass the boundary helper
        catalog[Columns.ITEM] = canonical_ids(catalog[Columns.ITEM])
        self.catalog = catalog.set_index(Columns.ITEM, drop=False)
        self._titles = self.catalog[Columns.TITLE].astype(str)  # display text, not an id
        self._search: Any = None
        self._explainer: Any = None
        self._prepared: dict[str, PreparedRecommender | PreparedRanker | None] = {}
        self._context: ListContext | None = None
        self._order: dict[str, float] | None = None
        #: The rule store's active merchandising rules, added to policies that name none.
        self.served_rules = ServedRules(lab.dataset)
        self.batch: BatchTable | None = None
        self.cache: AnswerCache[RecommendationAnswer] = AnswerCache(
            self._answer_uncached, RECOMMENDATION_CACHE_SIZE
        )

    # ------------------------------------------------------------------ helpers

    @property
    def version(self) -> str:
        """The served model version."""
        return self.lab.version

    def title(self, item_id: str) -> str:
        """An item's title (its id when the catalog has none)."""
        return str(self._titles.get(str(item_id), str(item_id)))

    def titles(self, item_ids: Sequence[str]) -> list[str]:
        """Titles of several items."""
        return [str(t) for t in titles_for(np.asarray(item_ids, dtype=object), self._titles)]

    def prepared(self, name: str) -> PreparedRecommender | PreparedRanker | None:
        """Model ``name`` prepared for one-shopper calls (built on first use; ``None`` when
        the model is not one the hot path knows: its own methods answer then)."""
        if name not in self._prepared:
            model = self.served_model(name)
            prepared: PreparedRecommender | PreparedRanker | None = None
            try:
                if model.stage_one_models:
                    prepared = PreparedRanker(model, self._titles)
                elif hasattr(model, "_popular_order"):
                    prepared = PreparedRecommender(model, self._titles)
            except (AttributeError, ValueError):
                prepared = None
            self._prepared[name] = prepared
        return self._prepared[name]

    def served_model(self, name: str) -> Any:
        """Model ``name`` as this service answers with it (ALS with compressed factors when
        configured; the ranker keeps its own)."""
        model = self.lab.model(name)
        if name == ALS:
            model = with_codec(model, self.config.als_factors)
        return model

    def attach_batch(self, table: BatchTable | None) -> bool:
        """Answer from a precomputed batch table where it covers the question.

        Returns whether the table is used: one computed by another version is ignored (its
        answers would not be this version's). Cached answers are dropped either way.
        """
        usable = table is not None and table.model_version == self.version
        self.batch = table if usable else None
        self.cache = AnswerCache(self._answer_uncached, RECOMMENDATION_CACHE_SIZE)
        return usable

    def warm_up(self) -> None:
        """Prepare every model now (and compile the purchase model's trees), so that the
        first request does not pay for it."""
        for name in self.lab.models:
            prepared = self.prepared(name)
            if isinstance(prepared, PreparedRanker):
                prepared.margins(
                    np.zeros((1, len(prepared.ranker.purchase_model_.feature_names_in_)))
                )
        self.order_probability("")  # the order model's batch of every known shopper

    def _top(self, name: str, user_id: str, k: int, filter_seen: bool) -> TopItems:
        """One model's top-``k`` for one shopper (hot path, or the model's own method)."""
        prepared = self.prepared(name)
        if prepared is not None:
            return prepared.top(user_id, k, filter_seen)
        reco = self.lab.models[name].recommend([user_id], k, filter_seen=filter_seen)
        items = reco[Columns.ITEM].to_numpy(dtype=object)
        probabilities = (
            reco["purchase_probability"].to_numpy(dtype=float)
            if "purchase_probability" in reco.columns
            else None
        )
        return TopItems(
            item_ids=items,
            titles=np.asarray(self.titles(list(items)), dtype=object),
            scores=reco[Columns.SCORE].to_numpy(dtype=float),
            cold_start=bool(reco["cold_start"].any()) if "cold_start" in reco.columns else False,
            probabilities=probabilities,
        )

    def knows_user(self, user_id: str) -> bool:
        """Whether any trained model has seen this shopper."""
        return any(
            str(user_id) in getattr(m, "users_", ()) for m in self.lab.models.values()
        ) or self._ranker_knows(str(user_id))

    def _ranker_knows(self, user_id: str) -> bool:
        ranker = self.lab.ranker
        if ranker is None:
            return False
        return bool(ranker.generator_.users_.to_internal([user_id])[0] >= 0)

    def _chain(self, model: str) -> list[str]:
        if model in FALLBACK_CHAIN:
            chain = list(FALLBACK_CHAIN[FALLBACK_CHAIN.index(model) :])
        else:
            chain = [model]
        if cold_start_model() not in chain:
            chain.append(cold_start_model())
        return [m for m in chain if m in self.lab.models]

    # ------------------------------------------------------------------ recommendations

    def recommend_frame(
        self,
        user_id: str,
        k: int,
        model: str,
        *,
        policy: PolicyChoice,
        purchases: pd.DataFrame | None = None,
    ) -> tuple[pd.DataFrame, str, str | None]:
        """Top-``k`` items for one shopper under ``policy``, with titles and probabilities.

        ``purchases``: the shopper's purchase events with timestamps, for a policy that
        hides items bought in the last N days (default: the times the version keeps).
        ``frame.attrs["list_policy"]`` names the policy.

        Returns
        -------
        (frame, served_by, reason)
            ``frame`` has ``item_id, title, score, purchase_probability, rank``;
            ``served_by`` is the model that answered; ``reason`` says why it is not the one
            asked for (``None`` when it is).
        """
        answer = self.answer(user_id, k, model, policy=policy, purchases=purchases)
        policy = self.resolve_policy(policy)
        order = self.order_probability(user_id)
        frame = pd.DataFrame(
            {
                "item_id": answer.top.item_ids,
                "title": answer.top.titles,
                "score": answer.top.scores,
                "purchase_probability": answer.probabilities,
                "order_probability": np.full(len(answer.probabilities), order),
                "probability": order * np.asarray(answer.probabilities, dtype=float),
                "rank": answer.ranks,
            }
        )
        frame.attrs["list_policy"] = policy.to_dict()
        return frame, answer.served_by, answer.reason

    def answer(
        self,
        user_id: str,
        k: int,
        model: str,
        *,
        policy: PolicyChoice,
        purchases: pd.DataFrame | None = None,
    ) -> RecommendationAnswer:
        """The answer behind :meth:`recommend` and :meth:`recommend_frame` (cached).

        ``policy``: what the list may contain (:meth:`default_policy` is the lab's rule);
        ``purchases``: see :meth:`recommend_frame` (such answers are not cached).
        """
        refuse_forgotten(user_id)  # `forget`: never served again, from the moment it returns
        policy = self.resolve_policy(policy)
        if purchases is not None:
            context = replace(self.list_context(), purchases=purchases, _lookups={})
            answer = self._answer_uncached(str(user_id), check_k(k), str(model), policy, context)
            return replace(answer, policy=policy, cached=False)
        if any(r.start or r.end for r in policy.rules):  # the answer depends on the date
            answer = self._answer_uncached(str(user_id), check_k(k), str(model), policy)
            return replace(answer, policy=policy, cached=False)
        answer, hit = self.cache.get(str(user_id), check_k(k), str(model), policy)
        return replace(answer, policy=policy, cached=hit)

    def resolve_policy(self, policy: PolicyChoice) -> ListPolicy:
        """``policy`` itself, or the lab's (:meth:`default_policy`) for :data:`LAB_RULE`;
        its ``why`` says so when this version's bought pairs cannot be read."""
        if isinstance(policy, ListPolicy):
            broken = (getattr(self.lab, "broken", None) or {}).get("bought")
            if (
                policy.repeats == "leave-out-bought"
                and broken
                and "cannot be read" not in policy.why
            ):
                policy = replace(
                    policy,
                    why=f"{policy.why}; this version's bought pairs cannot be read ({broken}), "
                    "so every item the shopper interacted with is left out instead (restore "
                    "the version or retrain)",
                )
            return self.served_rules.apply(policy)
        if policy == LAB_RULE:
            return self.served_rules.apply(self.default_policy())
        raise TypeError(
            f"policy must be a ListPolicy or {LAB_RULE!r} (the lab's rule), got {policy!r}"
        )

    def merchandising(self) -> RuleSet | None:
        """The served merchandising rule set of this lab's dataset (:class:`ServedRules`)."""
        return self.served_rules.current()

    def default_policy(self) -> ListPolicy:
        """The lab's list policy: already-bought (or, where shoppers never come back to an
        item, every seen) items left out or kept as the repeat rule decides
        (:meth:`bought_rule`: the lab's settings, else the training data's repeat and return
        rates, the order and the rule evaluation uses)."""
        return ListPolicy.from_rule(self.bought_rule(None))

    def list_context(self) -> ListContext:
        """What applying a policy needs: the lab's bought pairs (``None`` where they are
        every seen pair), its catalog and when each pair was last bought."""
        if self._context is None:
            self._context = lab_context(self.lab)
        return self._context

    # ---- already-bought items (the lab's repeat rule, recsys_core.repeats): begin
    def bought_rule(self, filter_seen: bool | None = None) -> BoughtRule:
        """Whether lists leave out already-bought items, and why: the caller's choice, else
        the lab's settings, else the training data's repeat rate — the order evaluation uses
        (:func:`recsys_core.repeats.bought_rule`)."""
        settings = self.lab.manifest.get("settings") or {}
        rule = bought_rule(filter_seen, settings.get("filter_seen"), self._repeats())
        broken = (getattr(self.lab, "broken", None) or {}).get("bought")
        if rule.remove and broken:  # the answer says what it does instead
            rule = replace(
                rule,
                why=f"{rule.why}; this version's bought pairs cannot be read ({broken}), so "
                "every item the shopper interacted with is left out instead (restore the "
                "version or retrain)",
            )
        return rule

    def _repeats(self) -> dict[str, Any] | None:
        repeats = self.lab.manifest.get("repeats")
        return repeats if isinstance(repeats, dict) else None

    def bought_items(self, user_id: str) -> np.ndarray | None:
        """Item ids the shopper bought before training ended; ``None`` when they are every
        item the shopper interacted with (a purchase-only log, or an older version: the
        models' own seen filter removes exactly them)."""
        return self.list_context().bought_items(str(user_id))

    def _top_policy(
        self, name: str, user_id: str, k: int, policy: ListPolicy, context: ListContext
    ) -> TopItems:
        """``_top`` under ``policy`` (:func:`recsys_core.policy.top_with_policy`: the list is
        asked deep enough that ``k`` items pass)."""
        native = uses_model_seen_filter(policy, context)
        top, rows, ids = top_with_policy(
            lambda depth: self._top(name, user_id, depth, native),
            lambda found: found.item_ids,
            user_id,
            k,
            policy,
            context,
        )
        if len(rows) == len(top.item_ids) and (rows == np.arange(len(rows))).all():
            return top
        at = np.maximum(rows, 0)
        added = rows < 0  # pinned items the model did not rank: no score of its own
        scores = np.where(added, np.nan, np.asarray(top.scores, dtype=float)[at])
        probabilities = None
        if top.probabilities is not None:
            probabilities = np.asarray(top.probabilities, dtype=float)[at]
            if added.any():
                probabilities[added] = self.purchase_probability(user_id, ids[added])
        titles = np.asarray(top.titles, dtype=object)[at]
        if added.any():
            titles[added] = [self.title(i) for i in ids[added]]
        return TopItems(
            item_ids=ids,
            titles=titles,
            scores=scores,
            cold_start=top.cold_start,
            rows=None if top.rows is None or added.any() else top.rows[at],
            probabilities=probabilities,
        )

    # ---- already-bought items: end

    def _answer_uncached(
        self,
        user_id: str,
        k: int,
        model: str,
        policy: ListPolicy,
        context: ListContext | None = None,
    ) -> RecommendationAnswer:
        """A precomputed batch row when one covers the question, else the fallback chain
        from ``model`` until a step knows the shopper, under ``policy``."""
        context = context or self.list_context()
        batch = self.batch
        if batch is not None and batch.covers(user_id, k, model, policy, self.version):
            items, scores, probabilities = batch.lookup(user_id, k)
            if probabilities is None:
                probabilities = self.purchase_probability(user_id, items)
            elif policy.rules and np.isnan(probabilities).any():  # pinned items: not scored
                probabilities = np.array(probabilities, dtype=float)
                gaps = np.isnan(probabilities)
                probabilities[gaps] = self.purchase_probability(user_id, items[gaps])
            top = TopItems(
                item_ids=items,
                titles=titles_for(items, self._titles),
                scores=scores,
                cold_start=False,
                probabilities=probabilities,
            )
            return RecommendationAnswer(
                top, probabilities, model, None, source="batch", computed_at=batch.computed_at
            )
        reason: str | None = None
        if model not in FALLBACK_CHAIN:
            self.lab.model(model)  # unknown model names are a clear error, not a fallback
        elif model not in self.lab.models:
            reason = self._unavailable(model)
        for name in self._chain(model):
            try:
                top = self._top_policy(name, user_id, k, policy, context)
            except RecsysError as exc:
                reason = f"{name} could not answer: {exc}"
                continue
            if top.cold_start and name != cold_start_model():
                reason = f"shopper {user_id!r} is unknown to {name}: showing the fallback"
                continue
            if name != model and reason is None:
                reason = f"{model} is unavailable: served by {name}"
            if top.cold_start:
                reason = f"shopper {user_id!r} is unknown: showing the most popular items"
            probabilities = top.probabilities
            if probabilities is None:
                probabilities = self.purchase_probability(user_id, top.item_ids)
            return RecommendationAnswer(top, probabilities, name, reason)
        raise UnknownUserError(f"no model could recommend for shopper {user_id!r}")

    # ---- broken models (issue 10, owned by registry/fault tolerance): begin
    def _unavailable(self, model: str) -> str:
        """Why ``model`` cannot answer: left out as broken (with its damage) or not trained."""
        broken = getattr(self.lab, "broken", {})
        if model in broken:
            why = broken[model]
            return f"{model} is broken in version {self.version} ({why}): showing the fallback"
        return f"{model} is not trained in version {self.version}: showing the fallback"

    # ---- broken models: end

    def recommend(
        self, user_id: str, k: int, model: str, *, policy: PolicyChoice
    ) -> dict[str, Any]:
        """The ``recommend`` JSON of DESIGN.md, naming the policy (``list_policy``)."""
        return self.answer_json(user_id, self.answer(user_id, k, model, policy=policy))

    def recommend_many(
        self, user_ids: Sequence[str], k: int, model: str, *, policy: PolicyChoice
    ) -> pd.DataFrame:
        """Many shoppers' answers as one table (``user_id, rank, item_id, title, score,
        purchase_probability, model``): each row is what :meth:`answer` gives that shopper
        (the bulk export).

        Raises
        ------
        ConfigError
            ``model`` is not trained (a bulk export does not fall back wholesale).
        """
        self.lab.model(model)
        k = check_k(k)
        policy = self.resolve_policy(policy)
        parts = []
        for user in dict.fromkeys(str(u) for u in user_ids):
            answer = self.answer(user, k, model, policy=policy)
            n = len(answer.top.item_ids)
            parts.append(
                pd.DataFrame(
                    {
                        "user_id": np.full(n, user, dtype=object),
                        "rank": answer.ranks,
                        "item_id": answer.top.item_ids,
                        "title": answer.top.titles,
                        "score": np.asarray(answer.top.scores, dtype=float),
                        "purchase_probability": np.asarray(answer.probabilities, dtype=float),
                        "model": np.full(n, answer.served_by, dtype=object),
                    }
                )
            )
        if not parts:
            columns = ["user_id", "rank", "item_id", "title", "score", "purchase_probability"]
            return pd.DataFrame(columns=[*columns, "model"])
        frame = pd.concat(parts, ignore_index=True)
        frame.attrs["list_policy"] = policy.to_dict()
        return frame

    def answer_json(self, user_id: str, answer: RecommendationAnswer) -> dict[str, Any]:
        """The ``recommend`` JSON of an answer (built fresh: callers may modify it)."""
        top = answer.top
        order = self.order_probability(user_id)  # issue 16: the three probabilities
        order_num = _num(order)
        items = [
            {
                "item_id": str(item_id),
                "title": str(title),
                "score": _num(score),
                "purchase_probability": _num(probability),
                "order_probability": order_num,
                "probability": _num(order * float(probability)),
                "rank": rank,
            }
            for rank, (item_id, title, score, probability) in enumerate(
                zip(
                    top.item_ids.tolist(),
                    top.titles.tolist(),
                    np.asarray(top.scores, dtype=np.float64).tolist(),
                    np.asarray(answer.probabilities, dtype=np.float64).tolist(),
                    strict=True,
                ),
                start=1,
            )
        ]
        return {
            "user_id": str(user_id),
            "order_probability": _num(order),
            "model_version": self.version,
            "model": answer.served_by,
            "degraded": answer.reason is not None,
            "reason": answer.reason,
            "items": items,
            "source": answer.source,
            "computed_at": answer.computed_at,
            "already_bought": None if answer.policy is None else _already_bought(answer.policy),
            "list_policy": None if answer.policy is None else answer.policy.to_dict(),
        }

    def compare_models(
        self,
        user_id: str,
        k: int,
        *,
        policy: PolicyChoice,
        purchases: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Each trained model's top-``k`` for one shopper under ``policy``, side by side
        (``purchases``: see :meth:`recommend_frame`).

        Returns one row per recommended item with the rank each model gives it (NaN when
        it is not in that model's top ``k``), its title and purchase probability.
        """
        user_id = str(user_id)
        policy = self.resolve_policy(policy)
        context = self.list_context()
        if purchases is not None:
            context = replace(context, purchases=purchases, _lookups={})
        ranks: dict[str, pd.Series] = {}
        known: pd.Series | None = None  # the ranker's own probabilities of its top k
        k = check_k(k)
        for name in self.lab.models:
            try:
                top = self._top_policy(name, user_id, k, policy, context)
            except RecsysError:
                continue
            items = top.item_ids
            ranks[name] = pd.Series(np.arange(1, len(items) + 1, dtype=np.int64), index=items)
            if self.lab.models[name].scores_are_probabilities and top.probabilities is not None:
                known = pd.Series(np.asarray(top.probabilities, dtype=float), index=items)
        table = pd.DataFrame(ranks)
        table.index.name = "item_id"
        table = table.reset_index()
        table.insert(1, "title", self.titles(table["item_id"].tolist()))
        probability = np.full(len(table), np.nan)
        if known is not None:
            probability = table["item_id"].map(known).to_numpy(dtype=float, copy=True)
        missing = np.isnan(probability)
        if missing.any():
            probability[missing] = self.purchase_probability(
                user_id, table.loc[missing, "item_id"].tolist()
            )
        table.insert(2, "purchase_probability", probability)
        return table.sort_values("purchase_probability", ascending=False, na_position="last")

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """What is served: dataset, version, models, and whether any is missing."""
        broken = dict(getattr(self.lab, "broken", {}) or {})
        missing = [m for m in FALLBACK_CHAIN if m not in self.lab.models]
        reason = "; ".join(f"{m} broken: {why}" for m, why in broken.items()) or None
        return {
            "status": "degraded" if broken else "ok",
            "dataset": self.lab.dataset,
            "model_version": self.version,
            "models": list(self.lab.models),
            "degraded": bool(broken),
            "reason": reason,
            "not_trained": missing,
            "cache": {
                "size": len(self.cache),
                "hits": self.cache.hits,
                "misses": self.cache.misses,
            },
        }


def _already_bought(policy: ListPolicy) -> dict[str, Any]:
    """The ``already_bought`` block of an answer (kept for older clients)."""
    return {"remove": policy.removes_bought, "source": policy.source, "why": policy.why}


_num = json_number
