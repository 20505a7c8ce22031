"""One fold of the evaluation: fit every model on the split's training part and measure it
on its test window (ranking, beyond-accuracy, revenue, probabilities)."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.schema import Dataset
from recsys_core.errors import DataValidationError
from recsys_core.evaluation.config import EvaluationConfig, ProgressCallback, with_preset
from recsys_core.evaluation.intervals import bootstrap_intervals
from recsys_core.evaluation.memory import PeakMemory
from recsys_core.evaluation.probability import (
    PURCHASE_PROBABILITY,
    classifier_block,
    horizon_labels,
    horizon_mismatch,
    order_block,
    overall_probability_block,
)
from recsys_core.evaluation.protocol import (
    anti_join,
    cannot_run,
    folder_mb,
    list_rule,
    params_of,
    relevant_items,
    seen_pairs,
    test_purchase_revenue,
)
from recsys_core.evaluation.result import EvaluationResult, ModelResult
from recsys_core.interactions import InteractionMatrix
from recsys_core.metrics import (
    beyond_accuracy_metrics,
    jaccard_overlap,
    per_user_beyond_accuracy,
    per_user_ranking_metrics,
    per_user_revenue,
    ranking_metrics,
)
from recsys_core.models.registry import purchase_model
from recsys_core.policy import REPEATS_OF_RULE, ListContext, ListPolicy, recommend_with_policy
from recsys_core.provenance import library_versions
from recsys_core.ranking.config import ranker_defaults_note
from recsys_core.split import Split


def evaluate_split(
    dataset: Dataset,
    config: EvaluationConfig,
    split: Split,
    relevant_events: tuple[str, ...],
    *,
    checksum: str,
    progress: ProgressCallback,
    best_single_stage: str | None = None,
    chosen_on: str | None = None,
    light: bool = False,
) -> EvaluationResult:
    """Fit ``config.models`` on ``split.train`` and measure them on ``split.test``.

    ``best_single_stage`` / ``chosen_on``: the validation choice for the ranker's ratio.
    ``light``: a validation pass (no bootstrap, no new-items variant, no probabilities,
    no segments, models not kept).
    """
    from recsys_core.models import create_model, model_class
    from recsys_core.tuning import settings_for

    k = config.k
    notes = list(dataset.notes)
    if relevant_events != tuple(config.relevant_events):
        notes.append(
            f"the log has no {'/'.join(config.relevant_events)} events in its test period: "
            "every test-period event counts as relevant"
        )
    # settings scaled to the log are scaled to its training part: no test-period counts;
    # tuned settings whose window reaches this test window are ignored (and said so)
    settings = settings_for(
        dataset, checksum=checksum, scale_on=split.train, test_cutoff=split.cutoff
    )
    config = with_preset(config, dataset.name, settings.preset)
    notes.extend([*settings.notes, settings.line()])
    if purchase_model() in config.models:
        late = ranker_defaults_note(dataset.name, split.cutoff)
        if late is not None:
            notes.append(late)
    relevant = relevant_items(split, relevant_events)
    test_users = np.asarray(pd.unique(relevant[Columns.USER]), dtype=object)
    if len(test_users) == 0:
        raise DataValidationError(
            "the split leaves no test users (users with history and a relevant event in the "
            "test period); use a longer log or a longer test period"
        )
    assert config.weights is not None  # filled by with_preset
    matrix = InteractionMatrix.from_events(split.train, config.weights)
    seen = seen_pairs(split.train)
    relevant_new = anti_join(relevant, seen)
    item_vectors = matrix.matrix.T.tocsr()
    item_popularity = pd.Series(
        np.diff((matrix.matrix > 0).astype(np.int8).tocsc().indptr),
        index=matrix.items.external_ids,
    )
    rule = list_rule(config, settings, split.train, seen)
    notes.append(rule.note)
    filter_seen = rule.filter_seen
    split_info = split.describe()
    split_info["test_users"] = int(len(test_users))
    split_info["relevant"] = (
        f"items each test user had a {'/'.join(relevant_events)} event with in the test "
        "period"
        + (" (already-bought items removed from lists)" if filter_seen else " (repurchases count)")
    )
    split_info["already_bought"] = rule.description

    user_index = pd.Index(sorted(str(u) for u in test_users), name=Columns.USER)
    purchases = test_purchase_revenue(split.test)
    if purchases is None:
        notes.append("the log has no prices: revenue@k is not computed")

    # the one list policy of this split, applied by the one function every list path uses
    policy = ListPolicy(
        REPEATS_OF_RULE[rule.removes],
        source=str(rule.description.get("source", "")),
        why=str(rule.description.get("why", "")),
    )
    context = ListContext(
        bought=None if len(rule.bought) == len(seen) else rule.bought, catalog=dataset.catalog
    )
    split_info["list_policy"] = policy.to_dict()

    def serve(model: Any, users: list[str], extra: dict[str, Any]) -> pd.DataFrame:
        return recommend_with_policy(model, users, k, policy, context, **extra)

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
            with PeakMemory() as memory:
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
            reco = serve(model, list(test_users), extra)
        except DataValidationError as exc:  # this log cannot feed this model: skip, keep the rest
            skipped[name] = str(exc)
            progress(f"skipping {name}: {exc}", base)
            continue
        recommend_seconds = time.perf_counter() - start
        metrics = ranking_metrics(reco, relevant, k)
        if light:  # a validation pass reads only the ranking metrics: nothing else to measure
            results[name] = ModelResult(
                name=name,
                metrics=metrics,
                fit_seconds=fit_seconds,
                recommend_seconds=recommend_seconds,
                model_mb=float("nan"),
                params=params_of(model),
                per_user=pd.DataFrame(index=user_index),
                recommendations=reco,
                fit_memory_mb=memory.mb,
                model=None,
            )
            del model
            continue
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
        if config.new_items_variant and rule.removes != "seen":
            unseen = ListPolicy("leave-out-seen")
            reco_new = recommend_with_policy(model, list(test_users), k, unseen, context, **extra)
            users_new = relevant_new[Columns.USER].unique()
            reco_new = reco_new[reco_new[Columns.USER].isin(users_new)]
            new_metrics = ranking_metrics(reco_new, relevant_new, k)
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / name)
            model_mb = folder_mb(Path(tmp) / name)
        if model.scores_are_probabilities:
            progress("scoring the purchase classifier", (i + 0.9) / n_models)
            classifier, reliability = classifier_block(extra["candidates"], relevant)
            extra.clear()  # the candidate frame is large: do not keep it
        results[name] = ModelResult(
            name=name,
            metrics=metrics,
            fit_seconds=fit_seconds,
            recommend_seconds=recommend_seconds,
            model_mb=model_mb,
            params=params_of(model),
            per_user=pd.concat(per_user, axis=1),
            recommendations=reco,
            new_items_metrics=new_metrics,
            fit_memory_mb=memory.mb,
            model=model,
        )
    if not results:
        raise DataValidationError(
            "no model could run on this log: "
            + "; ".join(f"{name}: {why}" for name, why in skipped.items())
        )
    result = EvaluationResult(
        dataset=dataset.name,
        k=k,
        split=split_info,
        models=results,
        config=config.model_dump(mode="json"),
        notes=notes,
        skipped=skipped,
    )
    if light:
        return result
    if config.bootstrap_resamples > 0:
        progress("bootstrap intervals", 0.99)
        result.comparisons = bootstrap_intervals(
            results,
            k,
            user_index,
            n_resamples=config.bootstrap_resamples,
            seed=config.seed,
            best_single_stage=best_single_stage,
            chosen_on=chosen_on,
        )
    names = list(results)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            result.overlap[f"{a}~{b}"] = jaccard_overlap(
                results[a].recommendations, results[b].recommendations, k
            )
    result.classifier = classifier
    result.reliability = reliability.get("uniform")
    result.reliability_quantile = reliability.get("quantile")
    # the order model completes a model whose probabilities assume the shopper orders
    probabilistic = [r.model for r in results.values() if r.model.scores_are_probabilities]
    if probabilistic and split.cutoff is not None:
        progress("scoring the order model and the overall probability", 0.99)
        result.order_classifier, order_probability, order_raw = order_block(
            split.train, split.test, split.cutoff, test_days=config.test_days, seed=config.seed
        )
        ranker = probabilistic[0]
        why_not = horizon_mismatch(ranker, config.test_days)
        if why_not is not None:
            result.overall_probability = {"refused": why_not}
            notes.append(f"overall probability not evaluated: {why_not}")
        else:
            others = sorted(set(order_probability.index) - set(map(str, test_users)))
            served = pd.concat(
                [results[ranker.name].recommendations, serve(ranker, others, {})],
                ignore_index=True,
            )
            served = served[~served["cold_start"].to_numpy()] if "cold_start" in served else served
            pairs = served[[Columns.USER, Columns.ITEM, PURCHASE_PROBABILITY]]
            labels = horizon_labels(split.test, split.cutoff, config.test_days, relevant_events)
            overall, tables = overall_probability_block(pairs, order_probability, labels)
            before, _ = overall_probability_block(pairs, order_raw, labels)
            overall["labels"] = f"bought in the {config.test_days:g} days from {split.cutoff}"
            overall["before_recalibration"] = {
                key: before[key] for key in ("ece", "ece_quantile", "logloss", "mean_predicted")
            }
            overall["reliability"] = tables["uniform"].to_dict(orient="records")
            overall["reliability_quantile"] = tables["quantile"].to_dict(orient="records")
            result.overall_probability = overall
    from recsys_core.segments import evaluation_segments

    result.segments = evaluation_segments(
        {n: r.per_user for n, r in results.items()}, split.train, split.cutoff, dataset.name, k
    )
    if split.method == "random":
        notes.append("no timestamps: the split is a seeded per-user random split")
    result.provenance = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": config.seed,
        "library_versions": library_versions(),
        "data_sha256": checksum,
        "settings": settings.label,
        "events": int(len(dataset.events)),
    }
    return result
