"""Train and evaluate several models on one split, into one result object.

The protocol (see the README): split the log (temporal with a 30-day test period when it has
timestamps, a seeded per-user split otherwise); test users are users with training history
and at least one *relevant* event (a purchase, by default) in the test period; their relevant
items are the items they bought then. Every model is fitted on the training events and
recommends ``k`` items to every test user. Whether lists keep the items a shopper already
*bought* (purchase events before the cutoff; viewed items stay) follows the training data's
repeat rate (:func:`recsys_core.repeats.repeat_profile`; kept on Online Retail, where
repurchases count) unless the settings, ``filter_bought`` or ``filter_seen`` (which removes
every seen item) say otherwise; the lists are filtered by
:func:`recsys_core.policy.recommend_with_policy`. The "new items only" variant filters seen
items from the lists *and* from the relevant sets.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.errors import ConfigError, DataValidationError
from recsys_core.interactions import EventWeights, InteractionMatrix
from recsys_core.metrics import (
    UserBootstrap,
    beyond_accuracy_metrics,
    classifier_metrics,
    jaccard_overlap,
    per_user_beyond_accuracy,
    per_user_ranking_metrics,
    per_user_revenue,
    percentile_interval,
    ranking_metrics,
    reliability_table,
)
from recsys_core.models.registry import (
    ALS_SPARK,
    evaluated_by_default,
    optional_models,
    purchase_model,
    single_stage_models,
)
from recsys_core.policy import ListContext, ListPolicy, recommend_with_policy
from recsys_core.repeats import bought_pairs, bought_rule, repeat_profile
from recsys_core.split import Split, split_events

#: Models ``evaluate`` runs by default, in the order they are reported (the registry's).
ALL_MODELS: tuple[str, ...] = evaluated_by_default()
#: The single-stage recommenders among them (everything but the two-stage ranker).
SINGLE_STAGE_MODELS: tuple[str, ...] = tuple(m for m in ALL_MODELS if m in single_stage_models())
#: Models ``evaluate`` runs only when asked by name (not part of ``all``): they need an
#: optional extra (ALS on Spark: pyspark and a Java runtime).
OPTIONAL_MODELS: tuple[str, ...] = optional_models()

#: Receives a short description of the step and the overall fraction done (0..1).
ProgressCallback = Callable[[str, float], None]


def no_progress(_message: str, _fraction: float) -> None:
    return None


class EvaluationConfig(BaseModel):
    """Settings of one evaluation run."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=lambda: list(SINGLE_STAGE_MODELS),
        description="Models to fit and compare (popularity, itemknn, bpr, als, ranker).",
    )
    k: int = Field(10, ge=1, le=200, description="Length of each recommendation list.")
    test_days: float = Field(30, gt=0, description="Length of the temporal test period in days.")
    cutoff: str | None = Field(None, description="Explicit start of the test period (ISO date).")
    relevant_events: tuple[str, ...] = Field(
        ("purchase",),
        description="Test-period events that make an item relevant (falls back to all events "
        "when the log has none of them).",
    )
    filter_seen: bool | None = Field(
        None,
        description="True: drop every item the user interacted with (views too) from the "
        "main lists; False: keep every item (unless filter_bought is True). None: decided by "
        "filter_bought, the settings or the training data's repeat rate.",
    )
    filter_bought: bool | None = Field(
        None,
        description="Drop the items the user bought before the cutoff from the main lists "
        "(None: decided by the settings or the training data's repeat rate, see "
        "recsys_core.repeats).",
    )
    new_items_variant: bool = Field(
        True, description="Also report the variant with seen items removed from both sides."
    )
    weights: EventWeights | None = Field(
        None,
        description="Event weights of the interaction matrix (default: the dataset's preset, "
        "see recsys_core.presets).",
    )
    model_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-model hyperparameters, e.g. {'als': {'factors': 64}}; they override "
        "the dataset's preset.",
    )
    model_weights: dict[str, EventWeights] = Field(
        default_factory=dict,
        description="Per-model event weights that replace `weights` for that model.",
    )
    seed: int = Field(
        42, description="Seed for every model, the random split and the bootstrap resamples."
    )
    bootstrap_resamples: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Bootstrap resamples of the test users for the 95 % intervals (0: none).",
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Held-out share per user for the random split."
    )


@dataclass
class ModelResult:
    """Everything measured for one model."""

    name: str
    metrics: dict[str, float]
    fit_seconds: float
    recommend_seconds: float
    model_mb: float
    params: dict[str, Any]
    per_user: pd.DataFrame
    recommendations: pd.DataFrame
    new_items_metrics: dict[str, float] = field(default_factory=dict)
    #: 95 % bootstrap interval ``[low, high]`` of each metric (over test shoppers).
    ci95: dict[str, list[float]] = field(default_factory=dict)
    #: The fitted model (kept so reports and the app can explain it without refitting).
    model: Any = field(default=None, repr=False)


@dataclass
class EvaluationResult:
    """The outcome of :func:`evaluate`: per-model and per-user metrics plus provenance."""

    dataset: str
    k: int
    split: dict[str, Any]
    models: dict[str, ModelResult]
    classifier: dict[str, float] | None = None
    #: Reliability table of the purchase probabilities, 10 equal-width bins.
    reliability: pd.DataFrame | None = None
    #: The same with 10 equal-mass (quantile) bins.
    reliability_quantile: pd.DataFrame | None = None
    overlap: dict[str, float] = field(default_factory=dict)
    #: The shopper-level order model (does the shopper order at all in the test period).
    order_classifier: dict[str, float] | None = None
    #: Metrics by shopper segment (recsys_core.segments.evaluation_segments).
    segments: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Models that could not run on this log and why (e.g. the ranker without timestamps).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Paired-bootstrap model comparisons (see :func:`compare_models`).
    comparisons: dict[str, Any] = field(default_factory=dict)

    def metrics_table(self) -> pd.DataFrame:
        """One row per model: every metric, fit and recommend time and model size."""
        rows = []
        for name, res in self.models.items():
            row: dict[str, Any] = {"model": name, **res.metrics}
            row["fit_seconds"] = res.fit_seconds
            row["recommend_seconds"] = res.recommend_seconds
            row["model_mb"] = res.model_mb
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``evaluate --json`` (DESIGN.md), with a few extra keys."""
        models: dict[str, Any] = {}
        for name, res in self.models.items():
            entry: dict[str, Any] = dict(res.metrics)
            entry["fit_seconds"] = round(res.fit_seconds, 4)
            entry["recommend_seconds"] = round(res.recommend_seconds, 4)
            entry["model_mb"] = round(res.model_mb, 4)
            entry["params"] = res.params
            if res.new_items_metrics:
                entry["new_items_only"] = res.new_items_metrics
            if res.ci95:
                entry["ci95"] = res.ci95
            models[name] = entry
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "k": self.k,
            "split": self.split,
            "models": models,
            "skipped": dict(self.skipped),
            "comparisons": self.comparisons,
            "classifier": self.classifier,
            "order_classifier": self.order_classifier,
            "segments": self.segments,
            "overlap": self.overlap,
            "config": self.config,
            "provenance": self.provenance,
            "notes": self.notes,
        }
        if self.reliability is not None:
            out["reliability"] = self.reliability.to_dict(orient="records")
        if self.reliability_quantile is not None:
            out["reliability_quantile"] = self.reliability_quantile.to_dict(orient="records")
        return json_safe(out)

    def dumps(self) -> str:
        """Strict JSON text (NaN becomes null)."""
        return json.dumps(self.to_json(), indent=2)


def json_safe(value: Any) -> Any:
    """Replace NaN/inf with None and numpy scalars with Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


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
            Columns.USER: chosen[Columns.USER].astype(str).to_numpy(),
            Columns.ITEM: chosen[Columns.ITEM].astype(str).to_numpy(),
        }
    )
    return pairs.drop_duplicates(ignore_index=True)


def _split_with_relevant_events(
    events: pd.DataFrame, config: EvaluationConfig
) -> tuple[Split, tuple[str, ...]]:
    """The split and the event types that make an item relevant.

    Test users are those with one of ``config.relevant_events`` in the test period. When the
    test period has none of them (e.g. a views-only log), the split is redone so that any
    test-period event qualifies and every event type counts as relevant.
    """
    wanted = tuple(config.relevant_events)

    def split_on(test_events: tuple[str, ...] | None) -> Split:
        return split_events(
            events,
            test_days=config.test_days,
            cutoff=config.cutoff,
            test_events=test_events,
            test_fraction=config.test_fraction,
            seed=config.seed,
        )

    split = split_on(wanted)
    later = pd.concat([split.test[Columns.EVENT], split.cold_test.get(Columns.EVENT)])
    if later.astype(str).isin(list(wanted)).any() or split.test.empty and later.empty:
        return split, wanted
    if split.method == "random":  # the random split keeps every user; only relevance changes
        return split, _event_types(events)
    return split_on(None), _event_types(events)


def _event_types(events: pd.DataFrame) -> tuple[str, ...]:
    return tuple(sorted(pd.unique(events[Columns.EVENT].astype(str))))


def _seen_pairs(train: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            Columns.USER: train[Columns.USER].astype(str).to_numpy(),
            Columns.ITEM: train[Columns.ITEM].astype(str).to_numpy(),
        }
    ).drop_duplicates(ignore_index=True)


def _anti_join(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    keys = [Columns.USER, Columns.ITEM]
    left = frame.assign(**{c: frame[c].astype(str) for c in keys})
    merged = left.merge(pairs.assign(_seen=True), on=keys, how="left")
    return frame[merged["_seen"].isna().to_numpy()]


def _rerank(reco: pd.DataFrame) -> pd.DataFrame:
    reco = reco.sort_values([Columns.USER, Columns.RANK], kind="stable").copy()
    reco[Columns.RANK] = reco.groupby(Columns.USER, sort=False).cumcount() + 1
    return reco


def _folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers (for reproducibility)."""
    out = {}
    for pkg in ("numpy", "scipy", "pandas", "scikit-learn", "implicit", "lightgbm", "shap"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def data_checksum(events: pd.DataFrame) -> str:
    """A SHA-256 over the event log's content (ids, events, timestamps, quantities)."""
    import hashlib

    digest = hashlib.sha256()
    for col in events.columns:
        values = events[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(str)
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy()
        digest.update(col.encode())
        digest.update(hashed.tobytes())
    return digest.hexdigest()


def with_preset(
    config: EvaluationConfig, dataset_name: str, preset: Any | None = None
) -> EvaluationConfig:
    """Fill unset weights and hyperparameters from ``preset`` (default: the dataset's
    built-in preset; :func:`recsys_core.tuning.settings_for` picks one)."""
    from recsys_core.presets import preset_for

    preset = preset if preset is not None else preset_for(dataset_name)
    params = {name: dict(p) for name, p in preset.model_params.items()}
    for name, own in config.model_params.items():
        params.setdefault(name, {}).update(own)
    return config.model_copy(
        update={
            "weights": config.weights or preset.weights,
            "model_params": params,
            "model_weights": {**preset.model_weights, **config.model_weights},
        }
    )


def evaluate(
    dataset: Dataset,
    config: EvaluationConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Fit every configured model on one split and measure it.

    Parameters
    ----------
    dataset:
        The event log and catalog.
    config:
        Models, ``k``, split and hyperparameters; defaults to :class:`EvaluationConfig`.
    progress:
        Called with a message and the fraction done, for progress bars.

    Raises
    ------
    ConfigError
        Unknown model names.
    DataValidationError
        A log that leaves no test users.
    """
    from recsys_core.models import create_model, model_class
    from recsys_core.tuning import settings_for

    config = config or EvaluationConfig()
    progress = progress or no_progress
    unknown = [m for m in config.models if m not in (*ALL_MODELS, *OPTIONAL_MODELS)]
    if unknown:
        raise ConfigError(
            f"unknown model(s) {unknown}; choose from {[*ALL_MODELS, *OPTIONAL_MODELS]}"
        )
    if ALS_SPARK in config.models:
        from recsys_core.models.als_spark import require_spark

        require_spark()  # say what to install before any work is done
    k = config.k
    notes = list(dataset.notes)

    progress("splitting the log", 0.0)
    split, relevant_events = _split_with_relevant_events(dataset.events, config)
    if relevant_events != tuple(config.relevant_events):
        notes.append(
            f"the log has no {'/'.join(config.relevant_events)} events in its test period: "
            "every test-period event counts as relevant"
        )
    # settings scaled to the log are scaled to its training part: no test-period counts
    checksum = data_checksum(dataset.events)
    settings = settings_for(dataset, checksum=checksum, scale_on=split.train)
    config = with_preset(config, dataset.name, settings.preset)
    notes.extend([*settings.notes, settings.line()])
    relevant = relevant_items(split, relevant_events)
    test_users = np.asarray(pd.unique(relevant[Columns.USER]), dtype=object)
    if len(test_users) == 0:
        raise DataValidationError(
            "the split leaves no test users (users with history and a relevant event in the "
            "test period); use a longer log or a longer test period"
        )
    assert config.weights is not None  # filled by with_preset
    matrix = InteractionMatrix.from_events(split.train, config.weights)
    seen = _seen_pairs(split.train)
    relevant_new = _anti_join(relevant, seen)
    item_vectors = matrix.matrix.T.tocsr()
    item_popularity = pd.Series(
        np.diff((matrix.matrix > 0).astype(np.int8).tocsc().indptr),
        index=matrix.items.external_ids,
    )
    repeats = repeat_profile(split.train)
    bought = bought_pairs(split.train)
    # purchase-only log (or none at all): bought == seen, the models' own filter is the same
    bought_is_seen = len(bought) == len(seen)
    would = "to remove" if repeats.filter_seen else "to keep"
    seen_rule: dict[str, Any]
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
        rule = bought_rule(asked, settings.preset.filter_seen, repeats.to_dict())
        removes = "bought" if rule.remove else "nothing"
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
        + ("" if bought_is_seen else " (with every item the shopper interacted with)")
        + ": ",
        "bought": "already-bought items (purchases before the cutoff) removed from lists; "
        "viewed, carted and favourited items stay: ",
        "nothing": "already-bought items kept in lists: ",
    }[removes]
    notes.append(removed_what + str(seen_rule["why"]))
    split_info = split.describe()
    split_info["test_users"] = int(len(test_users))
    split_info["relevant"] = (
        f"items each test user had a {'/'.join(relevant_events)} event with in the test "
        "period"
        + (" (already-bought items removed from lists)" if filter_seen else " (repurchases count)")
    )
    split_info["already_bought"] = seen_rule
    repeats_rule = {"nothing": "keep", "bought": "leave-out-bought", "seen": "leave-out-seen"}
    policy = ListPolicy(
        repeats_rule[removes],  # type: ignore[arg-type]
        source=str(seen_rule["source"]),
        why=str(seen_rule["why"]),
    )
    context = ListContext(bought=None if bought_is_seen else bought, catalog=dataset.catalog)
    split_info["list_policy"] = policy.to_dict()

    user_index = pd.Index(sorted(str(u) for u in test_users), name=Columns.USER)
    purchases = test_purchase_revenue(split.test)
    if purchases is None:
        notes.append("the log has no prices: revenue@k is not computed")

    results: dict[str, ModelResult] = {}
    classifier: dict[str, float] | None = None
    reliability: dict[str, pd.DataFrame] = {}
    n_models = len(config.models)
    skipped: dict[str, str] = {}
    for i, name in enumerate(config.models):
        base = (i + 0.05) / n_models
        why_not = cannot_run(name, dataset.events)
        if why_not is not None:
            skipped[name] = why_not
            progress(f"skipping {name}: {why_not}", base)
            continue
        progress(f"fitting {name}", base)
        params = dict(config.model_params.get(name, {}))
        start = time.perf_counter()
        try:
            if "seed" in model_class(name).config_class.model_fields:
                params.setdefault("seed", config.seed)
            weights = config.model_weights.get(name)
            own = matrix if weights is None else InteractionMatrix.from_events(split.train, weights)
            model: Any = create_model(name, **params).fit_log(
                split.train, dataset.catalog, cutoff=split.cutoff, matrix=own
            )
            fit_seconds = time.perf_counter() - start
            progress(f"recommending with {name}", (i + 0.6) / n_models)
            start = time.perf_counter()
            # a model scoring probabilities scores its candidates once for the lists, the
            # new-items variant and the classifier metrics
            extra: dict[str, Any] = {}
            if model.scores_are_probabilities:
                extra["candidates"] = model.warm_candidate_frame(list(test_users))
            reco = recommend_with_policy(model, list(test_users), k, policy, context, **extra)
        except DataValidationError as exc:  # this log cannot feed this model: skip, keep the rest
            skipped[name] = str(exc)
            progress(f"skipping {name}: {exc}", base)
            continue
        recommend_seconds = time.perf_counter() - start
        metrics = ranking_metrics(reco, relevant, k)
        metrics.update(
            beyond_accuracy_metrics(
                reco,
                k,
                item_popularity=item_popularity,
                n_users=len(matrix.users),
                catalog_size=len(matrix.items),
                item_vectors=item_vectors,
                item_index=matrix.items,
            )
        )
        per_user = [
            per_user_ranking_metrics(reco, relevant, k).reindex(user_index),
            per_user_beyond_accuracy(
                reco,
                k,
                users=user_index,
                item_popularity=item_popularity,
                n_users=len(matrix.users),
                item_vectors=item_vectors,
                item_index=matrix.items,
            ),
        ]
        if purchases is not None:
            revenue = per_user_revenue(reco, purchases, k, users=user_index)
            metrics[f"revenue@{k}"] = float(revenue.mean())
            metrics[f"revenue_total@{k}"] = float(revenue.sum())
            per_user.append(revenue.to_frame())
        new_metrics: dict[str, float] = {}
        if config.new_items_variant and not lists_without_seen:
            unseen = ListPolicy("leave-out-seen")
            reco_new = recommend_with_policy(model, list(test_users), k, unseen, context, **extra)
            users_new = relevant_new[Columns.USER].unique()
            reco_new = reco_new[reco_new[Columns.USER].astype(str).isin(users_new)]
            new_metrics = ranking_metrics(reco_new, relevant_new, k)
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / name)
            model_mb = _folder_mb(Path(tmp) / name)
        if model.scores_are_probabilities:
            progress("scoring the purchase classifier", (i + 0.9) / n_models)
            classifier, reliability = _classifier_block(extra["candidates"], relevant)
            extra.clear()  # the candidate frame is large: do not keep it
        results[name] = ModelResult(
            name=name,
            metrics=metrics,
            fit_seconds=fit_seconds,
            recommend_seconds=recommend_seconds,
            model_mb=model_mb,
            params=_params_of(model),
            per_user=pd.concat(per_user, axis=1),
            recommendations=reco,
            new_items_metrics=new_metrics,
            model=model,
        )
    if not results:
        raise DataValidationError(
            "no model could run on this log: "
            + "; ".join(f"{name}: {why}" for name, why in skipped.items())
        )
    comparisons: dict[str, Any] = {}
    if config.bootstrap_resamples > 0:
        progress("bootstrap intervals", 0.99)
        comparisons = bootstrap_intervals(
            results,
            k,
            user_index,
            n_resamples=config.bootstrap_resamples,
            seed=config.seed,
        )
    overlap = {}
    names = list(results)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            overlap[f"{a}~{b}"] = jaccard_overlap(
                results[a].recommendations, results[b].recommendations, k
            )
    order_classifier = None
    # the order model completes a model whose probabilities assume the shopper orders
    scores_probabilities = any(r.model.scores_are_probabilities for r in results.values())
    if scores_probabilities and split.cutoff is not None:
        from recsys_core.ranking.order_model import evaluate_order_model

        progress("scoring the order model", 0.99)
        order_classifier, _ = evaluate_order_model(
            split.train, split.test, split.cutoff, test_days=config.test_days, seed=config.seed
        )
    from recsys_core.segments import evaluation_segments

    segments = evaluation_segments(
        {n: r.per_user for n, r in results.items()}, split.train, split.cutoff, dataset.name, k
    )
    progress("done", 1.0)
    if split.method == "random":
        notes.append("no timestamps: the split is a seeded per-user random split")
    return EvaluationResult(
        dataset=dataset.name,
        k=k,
        split=split_info,
        models=results,
        classifier=classifier,
        reliability=reliability.get("uniform"),
        reliability_quantile=reliability.get("quantile"),
        overlap=overlap,
        order_classifier=order_classifier,
        segments=segments,
        config=config.model_dump(mode="json"),
        provenance={
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": config.seed,
            "library_versions": library_versions(),
            "data_sha256": checksum,
            "settings": settings.label,
            "events": int(len(dataset.events)),
        },
        notes=notes,
        skipped=skipped,
        comparisons=comparisons,
    )


def test_purchase_revenue(test: pd.DataFrame) -> pd.DataFrame | None:
    """``user_id, item_id, revenue`` (quantity x price) of the test-period purchases.

    ``None`` when the log has no prices. Purchases without a price add 0; without a
    quantity column every purchase is one unit.
    """
    if Columns.PRICE not in test.columns:
        return None
    bought = test[test[Columns.EVENT].astype(str).to_numpy() == "purchase"]
    price = bought[Columns.PRICE].to_numpy(dtype=np.float64, na_value=np.nan)
    quantity = (
        bought[Columns.QUANTITY].to_numpy(dtype=np.float64, na_value=1.0)
        if Columns.QUANTITY in bought.columns
        else np.ones(len(bought))
    )
    return pd.DataFrame(
        {
            Columns.USER: bought[Columns.USER].astype(str).to_numpy(),
            Columns.ITEM: bought[Columns.ITEM].astype(str).to_numpy(),
            "revenue": np.nan_to_num(price * quantity, nan=0.0),
        }
    )


def bootstrap_intervals(
    results: Mapping[str, ModelResult],
    k: int,
    users: pd.Index,
    *,
    n_resamples: int = 1000,
    seed: int = 42,
) -> dict[str, Any]:
    """Fill each result's ``ci95`` and return the paired model comparisons.

    One seeded :class:`~recsys_core.metrics.UserBootstrap` over the test users serves every
    model and metric, so the same resamples are shared: the interval of a difference or a
    ratio between two models comes from the per-resample differences (a paired bootstrap).

    Every metric that is a mean over test shoppers gets an interval (and
    ``revenue_total@k``, their sum). ``coverage@k`` does not: it counts distinct items over
    all lists, and a resample holds only about 63 % of the distinct shoppers, so its
    bootstrap distribution lies below the estimate and a percentile interval would not
    contain it.

    Returns
    -------
    dict
        ``"method"`` (text), ``"differences"``: ``{"a-b": {metric: {"difference",
        "ci95"}}}`` for every pair of models, and ``"ranker_vs_best_single_stage"``:
        ``{"best_single_stage", "metric", "ratio", "ci95", "difference",
        "difference_ci95"}`` when the ranker and a single-stage model ran.
    """
    boot = UserBootstrap(len(users), n_resamples=n_resamples, seed=seed)
    samples: dict[str, dict[str, np.ndarray]] = {}
    for name, res in results.items():
        frame = res.per_user.reindex(users)
        means = boot.means(frame)
        own = {col: means[:, j] for j, col in enumerate(frame.columns)}
        if f"revenue@{k}" in own:
            own[f"revenue_total@{k}"] = own[f"revenue@{k}"] * len(users)
        samples[name] = own
        res.ci95 = {
            metric: percentile_interval(values)
            for metric, values in own.items()
            if metric in res.metrics
        }
    differences: dict[str, Any] = {}
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = [m for m in samples[a] if m in samples[b] and m in results[a].metrics]
            differences[f"{a}-{b}"] = {
                m: {
                    "difference": results[a].metrics[m] - results[b].metrics[m],
                    "ci95": percentile_interval(samples[a][m] - samples[b][m]),
                }
                for m in shared
            }
    out: dict[str, Any] = {
        "method": (
            f"percentile bootstrap over the {len(users):,} test shoppers, {n_resamples} "
            f"resamples (seed {seed}), the same resamples for every model (paired); "
            "coverage has no interval (a resample holds about 63 % of the distinct shoppers, "
            "so resampled coverage is biased low)"
        ),
        "differences": differences,
    }
    singles = [n for n in names if n in SINGLE_STAGE_MODELS]
    metric = f"ndcg@{k}"
    purchase = purchase_model()
    if purchase in results and singles:
        best = max(singles, key=lambda n: results[n].metrics[metric])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = samples[purchase][metric] / samples[best][metric]
        point_best = results[best].metrics[metric]
        point = results[purchase].metrics[metric]
        out["ranker_vs_best_single_stage"] = {
            "best_single_stage": best,
            "metric": metric,
            "ratio": point / point_best if point_best else float("nan"),
            "ci95": percentile_interval(ratio),
            "difference": point - point_best,
            "difference_ci95": percentile_interval(
                samples[purchase][metric] - samples[best][metric]
            ),
            "note": "the best single-stage model is chosen by its point estimate on this test "
            "period",
        }
    return out


def cannot_run(model: str, events: pd.DataFrame) -> str | None:
    """Why ``model`` cannot be trained on this log (``None`` when it can).

    Only requirements known before fitting are checked here (the model class's
    :meth:`~recsys_core.models.interface.Recommender.cannot_train_on`: e.g. the ranker needs
    timestamps); a model whose fit finds the log unusable (e.g. no purchases for the ranker's
    labels) is skipped by :func:`evaluate` with the fit's own message.
    """
    from recsys_core.models import model_class

    return model_class(model).cannot_train_on(events)


def _params_of(model: Any) -> dict[str, Any]:
    cfg = getattr(model, "config", None)
    if isinstance(cfg, BaseModel):
        return cfg.model_dump(mode="json")
    return {}


def _classifier_block(
    frame: pd.DataFrame, relevant: pd.DataFrame
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """AUC, log loss, Brier and ECE (both binnings) of the ranker's scored test candidates.

    Returns the metrics and the reliability tables by binning (``uniform``, ``quantile``).
    """
    keys = pd.MultiIndex.from_frame(relevant[[Columns.USER, Columns.ITEM]].astype(str))
    cand = pd.MultiIndex.from_arrays(
        [frame[Columns.USER].astype(str), frame[Columns.ITEM].astype(str)]
    )
    y_true = cand.isin(keys).astype(np.int8)
    y_prob = frame["purchase_probability"].to_numpy(dtype=np.float64)
    metrics = classifier_metrics(y_true, y_prob)
    metrics["candidates"] = float(len(frame))
    metrics["positive_rate"] = float(y_true.mean()) if len(y_true) else float("nan")
    metrics["mean_predicted"] = float(y_prob.mean()) if len(y_prob) else float("nan")
    metrics["candidate_recall"] = float(
        len(cand[cand.isin(keys)].unique()) / max(len(keys.unique()), 1)
    )
    tables = {
        strategy: reliability_table(y_true, y_prob, strategy=strategy)
        for strategy in ("uniform", "quantile")
    }
    return metrics, tables
