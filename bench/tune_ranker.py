"""Scratch: measure the two-stage ranker on the Online Retail protocol (prints figures).

Protocol: temporal split, test period = last 30 days (cutoff 2011-11-09), test users =
shoppers with purchases before and during it, relevant = items they bought during it.

    python bench/tune_ranker.py [--dataset online-retail] [--validation] [--set key=value ...]
        [--sweep '[{"cross_fit_folds": 0, "early_stopping_rounds": 30}, ...]']

``--validation`` runs the same protocol one period earlier, on the validation window: the
test period is dropped, the 30 days before it are the "test" period (cutoff 2011-10-09 on
Online Retail) and the ranker trains on what precedes them. Choose settings there and score
the chosen one once on the real test period.

``--validation --earlier N`` moves that window N more periods back (cutoff 2011-09-09 for
N=1 on Online Retail): a second window to check a choice made on the validation window.

``--order-sweep`` takes a JSON list of order-model settings (``OrderModelConfig`` keys over
its defaults), fits each on the window's training events, scores every shopper with history
("orders in the period") and prints AUC, log loss, both ECEs and the trees kept; the ranker
is not fitted.

``--variants`` takes a JSON list of ``{"drop_groups": [...], "n_als": N, "n_itemknn": N}``
(each key optional): the training rows and candidates are built once with the ranker's
settings (the largest counts), and each variant refits the default classifier without the
named feature groups and/or on the rows stage one would still propose with smaller
candidate counts (ALS rank <= n_als or item-kNN rank <= n_itemknn or the shopper's own
history); it prints NDCG@10 with the paired-bootstrap difference to the first variant.
This is how the feature groups and candidate counts are checked on the validation window.

A variant may also hold ``"sequence": {...}`` (``SASRecConfig`` keys over
``SEQUENCE_DEFAULTS``; ``{}`` for the defaults; needs torch): the optional ``sequence`` group
(the ``sasrec`` score and rank of each row's pair, one model per training-window cutoff and
one at the cutoff, each fitted on the events before it) is added to the columns; and
``"sequence_candidates": N``, which only prints how many of the period's purchases the
``sasrec`` top N adds to the candidates (the recall a candidate source could add).

A variant may also hold ``"userknn": {"k": K, "tau_days": T}`` (``{}`` for k=100, tau 90
days): a trial of a TIFU-KNN-style user-neighbour score (``bench/userknn_trial.py``), two
columns (the score and its rank among the shopper's rows of the window) added to the
training rows (one score matrix per window cutoff, from the purchases before it) and to the
candidates (one at the cutoff); it prints the CPU seconds per cutoff.

``"seed": S`` refits the classifier with another seed (the rows and candidates stay) and
``"compare_to": K`` pairs the variant with variant ``K`` (default 0, the first) instead.

``--sweep`` takes a JSON list of purchase-classifier settings (``PurchaseModelConfig`` keys,
applied over its defaults; the ranker's own classifier, e.g. a cheap
``--set 'classifier={"n_estimators": 20, "cross_fit_folds": 0}'``, is only printed): the
training rows and the scored candidates are built once and each setting refits only the
classifier on the same rows. Each prints NDCG@10, AUC, both ECEs, trees kept, and the fit's
wall and CPU seconds (CPU time counts every thread of this process; the machine may be
shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.userknn_trial import USERKNN_FEATURES, userknn_columns  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.interactions import InteractionMatrix  # noqa: E402
from recsys_core.metrics import (  # noqa: E402
    classifier_metrics,
    per_user_ranking_metrics,
    ranking_metrics,
)
from recsys_core.models import create_model  # noqa: E402
from recsys_core.ranking.features import (  # noqa: E402
    FEATURE_NAMES,
    REGISTRY,
    SEEN_FEATURES,
)
from recsys_core.ranking.features.sequence import (  # noqa: E402
    SEQUENCE_FEATURES,
    SequenceScores,
    sequence_columns,
)
from recsys_core.ranking.objectives import window_ages  # noqa: E402
from recsys_core.ranking.order_model import OrderModel, order_labels  # noqa: E402
from recsys_core.ranking.purchase_model import PurchaseModel  # noqa: E402
from recsys_core.ranking.ranker import (  # noqa: E402
    LABEL,
    PURCHASE_PROBABILITY,
    RAW_SCORE,
    WINDOW_CUTOFF,
    PurchaseModelConfig,
    TwoStageRanker,
    build_training_frame,
)
from recsys_core.ranking.window_cache import WindowCache, using_window_cache  # noqa: E402
from recsys_core.split import temporal_split  # noqa: E402


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="online-retail")
    parser.add_argument("--set", nargs="*", default=[], help="ranker settings key=value")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--importance", action="store_true")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score on the 30 days before the test period (for choosing settings)",
    )
    parser.add_argument(
        "--earlier",
        type=int,
        default=0,
        help="score N more 30-day periods before the validation window (an earlier window "
        "to check a choice on; with --validation)",
    )
    parser.add_argument(
        "--sweep",
        default=None,
        help="JSON list of classifier settings to refit on the same rows and candidates",
    )
    parser.add_argument(
        "--variants",
        default=None,
        help="JSON list of {drop_groups, n_als, n_itemknn, sequence, sequence_candidates, "
        "userknn, seed, compare_to}",
    )
    parser.add_argument(
        "--per-user-out",
        default=None,
        help="CSV to write each --variants (or --sweep) entry's per-shopper NDCG@10 to "
        "(one column each)",
    )
    parser.add_argument(
        "--order-sweep",
        default=None,
        help="JSON list of order-model settings to score (the ranker is not fitted)",
    )
    args = parser.parse_args()

    data = load_dataset(args.dataset)
    split = temporal_split(data.events, test_days=30, test_events=("purchase",))
    if args.validation:
        for _ in range(1 + args.earlier):
            split = temporal_split(split.train, test_days=30, test_events=("purchase",))
    elif args.earlier:
        raise SystemExit("--earlier N goes with --validation")
    relevant = split.test[split.test["event"].astype(str) == "purchase"][["user_id", "item_id"]]
    relevant = relevant.astype(str).drop_duplicates()
    users = list(split.test_users)
    period = "validation" if args.validation else "test"
    period += f", {args.earlier} period(s) earlier" if args.earlier else ""
    print(f"{args.dataset} ({period}): cutoff {split.cutoff}, {len(users)} test users")
    if args.order_sweep:
        _order_sweep(json.loads(args.order_sweep), split)
        return

    if args.baselines:
        matrix = InteractionMatrix.from_events(split.train)
        for name, params in (("popularity", {}), ("als", {"factors": 64}), ("itemknn", {})):
            start = time.perf_counter()
            model = create_model(name, **params).fit(matrix)
            seconds = time.perf_counter() - start
            reco = model.recommend(users, 10, filter_seen=False)
            ndcg = ranking_metrics(reco, relevant, 10)["ndcg@10"]
            print(f"  {name:<10} ndcg@10 {ndcg:.4f}  fit {seconds:.1f}s")

    settings: dict[str, object] = {}
    for item in args.set:
        key, _, text = item.partition("=")
        settings[key] = _value(text)
    if args.sweep or args.variants:  # their rebuild of the training rows reuses the fit's
        reuse = contextlib.ExitStack()  # (held until the process ends)
        reuse.enter_context(using_window_cache(WindowCache()))
    start = time.perf_counter()
    ranker = TwoStageRanker(settings).fit(split.train, data.catalog, cutoff=split.cutoff)
    fit_seconds = time.perf_counter() - start
    reco = ranker.recommend(users, 10, filter_seen=False)
    metrics = ranking_metrics(reco, relevant, 10)
    frame = ranker.candidate_frame(users)
    pairs = pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])
    label = pairs.isin(pd.MultiIndex.from_frame(relevant)).astype(int)
    clf = classifier_metrics(label, frame[PURCHASE_PROBABILITY])
    print(f"  ranker     ndcg@10 {metrics['ndcg@10']:.4f}  fit {fit_seconds:.1f}s  {settings}")
    print("  ranking", {k: round(v, 4) for k, v in metrics.items()})
    print("  classifier", {k: round(v, 4) for k, v in clf.items()})
    print(
        f"  candidates {len(frame)} rows, recall {label.sum() / len(relevant):.3f}, "
        f"mean p {frame[PURCHASE_PROBABILITY].mean():.4f} vs rate {label.mean():.4f}"
    )
    print("  training", ranker.training_summary_)
    if args.importance:
        from recsys_core.explain import PurchaseExplainer

        explainer = PurchaseExplainer(ranker)
        sample = frame.sample(n=min(5000, len(frame)), random_state=0)
        print(explainer.global_importance(sample).head(15).to_string())
    if args.variants:
        per_user = _variants(
            ranker, json.loads(args.variants), split, data.catalog, frame, users, relevant
        )
        if args.per_user_out:
            pd.concat(per_user, axis=1).to_csv(args.per_user_out)
    if args.sweep:
        per_user = _sweep(
            ranker, json.loads(args.sweep), split, data.catalog, frame, label, users, relevant
        )
        if args.per_user_out:
            pd.concat(per_user, axis=1).to_csv(args.per_user_out)


def _order_sweep(settings_list: list[dict[str, object]], split: object) -> None:
    """Fit the order model with each setting and score every shopper with history."""
    train, test, cutoff = split.train, split.test, split.cutoff  # type: ignore[attr-defined]
    for settings in settings_list:
        wall, cpu = time.perf_counter(), time.process_time()
        model = OrderModel(settings).fit(train, cutoff=cutoff)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        buyers = order_labels(test, cutoff, cutoff + pd.Timedelta(days=model.config.horizon_days))
        y_true = np.asarray(model.features_.index.isin(buyers), dtype=np.int8)
        y_prob = model.predict_frame(model.features_)
        clf = classifier_metrics(y_true, y_prob)
        print(
            f"  order {json.dumps(settings)}: auc {clf['auc']:.4f} logloss {clf['logloss']:.4f} "
            f"ece {clf['ece']:.4f} ece_q {clf['ece_quantile']:.4f} rate {y_true.mean():.4f} "
            f"mean p {y_prob.mean():.4f} trees {model.classifier_.best_iterations_} "
            f"fit {wall:.1f}s wall {cpu:.1f}s cpu",
            flush=True,
        )


def _stage_one_keeps(rows: pd.DataFrame, n_als: int | None, n_itemknn: int | None) -> np.ndarray:
    """Rows stage one would still propose with at most ``n_als`` / ``n_itemknn`` candidates
    (the shopper's own history is always proposed)."""
    if n_als is None and n_itemknn is None:
        return np.ones(len(rows), dtype=bool)
    history = rows[list(SEEN_FEATURES)].fillna(0).to_numpy().sum(axis=1) > 0
    keep = history.copy()
    if n_als:
        keep |= rows["als_rank"].to_numpy() <= n_als
    if n_itemknn:
        keep |= rows["itemknn_rank"].to_numpy() <= n_itemknn  # NaN compares False
    return keep


def _variants(
    ranker: TwoStageRanker,
    variants: list[dict[str, object]],
    split: object,
    catalog: pd.DataFrame | None,
    frame: pd.DataFrame,
    users: list[str],
    relevant: pd.DataFrame,
) -> list[pd.Series]:
    """Refit the default classifier per variant (feature groups left out, fewer candidates)
    on the same rows; NDCG@10 and the paired difference to the first variant. Returns each
    variant's per-shopper NDCG@10 (named by the variant's position)."""
    train = build_training_frame(
        split.train,
        catalog,
        split.cutoff,
        ranker.config,  # type: ignore[attr-defined]
    )
    print(f"  variants: {len(train)} training rows, {len(frame)} candidate rows", flush=True)
    results: list[pd.Series] = []
    rng = np.random.default_rng(0)
    keys = pd.MultiIndex.from_frame(relevant)
    sequence = _sequence_tables(variants, split, train, frame, relevant)
    userknn = _userknn_tables(variants, split, train, frame)
    for variant in variants:
        dropped = set(variant.get("drop_groups") or [])  # type: ignore[arg-type]
        unknown = dropped - {g.name for g in REGISTRY.groups}
        if unknown:
            raise SystemExit(f"unknown feature groups {sorted(unknown)}")
        columns = [name for g in REGISTRY.groups if g.name not in dropped for name in g.names]
        columns = [c for c in FEATURE_NAMES if c in set(columns)]
        n_als, n_knn = variant.get("n_als"), variant.get("n_itemknn")
        rows = train[_stage_one_keeps(train, n_als, n_knn)]  # type: ignore[arg-type]
        cand = frame[_stage_one_keeps(frame, n_als, n_knn)].copy()  # type: ignore[arg-type]
        if "sequence" in variant:
            train_seq, cand_seq = sequence[json.dumps(variant["sequence"], sort_keys=True)]
            rows = pd.concat([rows, train_seq.loc[rows.index]], axis=1)
            cand = pd.concat([cand, cand_seq.loc[cand.index]], axis=1)
            columns = [*columns, *SEQUENCE_FEATURES]
        if "userknn" in variant:
            train_knn, cand_knn = userknn[json.dumps(variant["userknn"], sort_keys=True)]
            rows = pd.concat([rows, train_knn.loc[rows.index]], axis=1)
            cand = pd.concat([cand, cand_knn.loc[cand.index]], axis=1)
            columns = [*columns, *USERKNN_FEATURES]
        wall, cpu = time.perf_counter(), time.process_time()
        model = PurchaseModel(
            **ranker.config.classifier.model_dump(),
            random_state=int(variant.get("seed", ranker.config.seed)),  # type: ignore[call-overload]
        ).fit(rows[columns], rows[LABEL], groups=rows["user_id"].to_numpy())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        margin = model.decision_function(cand[columns].to_numpy(dtype=np.float64))
        cand[RAW_SCORE] = margin
        cand[PURCHASE_PROBABILITY] = model.calibrator_.predict(margin)
        reco = ranker.recommend(users, 10, filter_seen=False, candidates=cand)
        per_user = per_user_ranking_metrics(reco, relevant, 10)["ndcg@10"]
        results.append(per_user.rename(str(len(results))))
        base_at = int(variant.get("compare_to", 0))  # type: ignore[call-overload]
        interval = _paired(per_user, results, base_at, rng)
        label = pd.MultiIndex.from_frame(cand[["user_id", "item_id"]]).isin(keys).astype(int)
        clf = classifier_metrics(label, cand[PURCHASE_PROBABILITY])
        print(
            f"  {json.dumps(variant)}: ndcg@10 {per_user.mean():.4f}{interval} "
            f"auc {clf['auc']:.4f} ece {clf['ece']:.4f} rows {len(rows)} cand {len(cand)} "
            f"recall {label.sum() / len(relevant):.3f} trees {model.best_iterations_} "
            f"fit {wall:.1f}s wall {cpu:.1f}s cpu",
            flush=True,
        )
    return results


def _paired(
    per_user: pd.Series, results: list[pd.Series], base_at: int, rng: np.random.Generator
) -> str:
    """`` (vs #K mean [2.5 %, 97.5 %])``: the paired bootstrap (1,000 resamples of the
    shoppers) of the mean per-shopper NDCG@10 difference of ``per_user`` (the last of
    ``results``) to ``results[base_at]``; empty for the first result."""
    if len(results) < 2:
        return ""
    base = results[base_at]
    diff = (per_user.reindex(base.index).fillna(0.0) - base).to_numpy()
    draws = rng.integers(0, len(diff), size=(1000, len(diff)))
    low, high = np.percentile(diff[draws].mean(axis=1), [2.5, 97.5])
    return f" (vs #{base_at} {diff.mean():+.4f} [{low:+.4f}, {high:+.4f}])"


def _sequence_tables(
    variants: list[dict[str, object]],
    split: object,
    train: pd.DataFrame,
    frame: pd.DataFrame,
    relevant: pd.DataFrame,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The ``sequence`` group's columns of the training rows (one model per window cutoff)
    and of the candidates (one at the cutoff), per distinct ``sequence`` setting; prints
    the fits' CPU time and what a ``sasrec`` candidate source would add."""
    events, cutoff = split.train, split.cutoff  # type: ignore[attr-defined]
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for variant in variants:
        if "sequence" in variant:
            key = json.dumps(variant["sequence"], sort_keys=True)
            if key in tables:
                continue
            settings = dict(variant["sequence"] or {})  # type: ignore[call-overload]
            wall = time.perf_counter()
            train_seq, models = sequence_columns(events, train, WINDOW_CUTOFF, settings)
            at_cutoff = frame[["user_id", "item_id"]].assign(**{WINDOW_CUTOFF: cutoff})
            cand_seq, top = sequence_columns(events, at_cutoff, WINDOW_CUTOFF, settings)
            models += top
            cpu = [round(m.fit_cpu_seconds_, 1) for m in models]
            print(
                f"  sequence {key}: {len(models)} sasrec fits, cpu s {cpu} (total "
                f"{sum(cpu):.1f}), {time.perf_counter() - wall:.1f}s wall with scoring; "
                f"each saw events up to {[str(m.last_event_) for m in models]}",
                flush=True,
            )
            tables[key] = (train_seq, cand_seq)
        if "sequence_candidates" in variant:
            n = int(variant["sequence_candidates"])  # type: ignore[call-overload]
            scorer = SequenceScores(variant.get("sequence") or {}).fit(events, cutoff)  # type: ignore[arg-type]
            top = scorer.top_items(list(frame["user_id"].unique()), n)
            have = pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])
            extra = top[~pd.MultiIndex.from_frame(top[["user_id", "item_id"]]).isin(have)]
            hits = pd.MultiIndex.from_frame(extra[["user_id", "item_id"]]).isin(
                pd.MultiIndex.from_frame(relevant)
            )
            base = pd.MultiIndex.from_frame(relevant).isin(have).sum()
            print(
                f"  sasrec top {n} as a candidate source: +{len(extra)} candidates, "
                f"+{int(hits.sum())} purchases; candidate recall {base / len(relevant):.3f} "
                f"-> {(base + hits.sum()) / len(relevant):.3f}",
                flush=True,
            )
    return tables


def _userknn_tables(
    variants: list[dict[str, object]], split: object, train: pd.DataFrame, frame: pd.DataFrame
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The trial ``userknn`` columns of the training rows (one score matrix per window cutoff)
    and of the candidates (one at the cutoff), per distinct ``userknn`` setting; prints the
    CPU seconds per cutoff and the last event each matrix used."""
    events, cutoff = split.train, split.cutoff  # type: ignore[attr-defined]
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for variant in variants:
        if "userknn" not in variant:
            continue
        key = json.dumps(variant["userknn"], sort_keys=True)
        if key in tables:
            continue
        settings = dict(variant["userknn"] or {})  # type: ignore[call-overload]
        wall, cpu = time.perf_counter(), time.process_time()
        train_knn, info = userknn_columns(events, train, WINDOW_CUTOFF, settings)
        at_cutoff = frame[["user_id", "item_id"]].assign(**{WINDOW_CUTOFF: cutoff})
        cand_knn, top = userknn_columns(events, at_cutoff, WINDOW_CUTOFF, settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"  userknn {key}: {len(info) + len(top)} cutoffs, {cpu:.1f}s cpu in all "
            f"({wall:.1f}s wall); per cutoff {info + top}; training rows scored "
            f"{train_knn['userknn_score'].notna().mean():.3f}, candidates "
            f"{cand_knn['userknn_score'].notna().mean():.3f}",
            flush=True,
        )
        tables[key] = (train_knn, cand_knn)
    return tables


def _sweep(
    ranker: TwoStageRanker,
    settings_list: list[dict[str, object]],
    split: object,
    catalog: pd.DataFrame | None,
    frame: pd.DataFrame,
    label: np.ndarray,
    users: list[str],
    relevant: pd.DataFrame,
) -> list[pd.Series]:
    """Refit only the classifier for each setting on the same rows; score the same candidates;
    returns each setting's per-shopper NDCG@10 (named by its position).

    A setting's ``"seed"`` refits with that seed (default the ranker's) and ``"compare_to":
    K`` pairs it with setting ``K`` (default 0, the first); the other keys are
    ``PurchaseModelConfig`` keys. The fit is the ranker's (lists: one shopper in one window,
    window ages for ``window_weight_decay``)."""
    train = build_training_frame(
        split.train,
        catalog,
        split.cutoff,
        ranker.config,  # type: ignore[attr-defined]
    )
    base = PurchaseModelConfig().model_dump()
    groups = train["user_id"].to_numpy()
    lists = train.groupby(["user_id", WINDOW_CUTOFF], sort=False, observed=True).ngroup()
    ages = window_ages(train[WINDOW_CUTOFF].to_numpy())
    matrix = frame[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    print(f"  sweep: {len(train)} training rows, {len(frame)} candidate rows")
    results: list[pd.Series] = []
    rng = np.random.default_rng(0)
    for entry in settings_list:
        settings = {k: v for k, v in entry.items() if k not in ("seed", "compare_to")}
        seed = int(entry.get("seed", ranker.config.seed))  # type: ignore[call-overload]
        config = PurchaseModelConfig(**{**base, **settings})
        wall, cpu = time.perf_counter(), time.process_time()
        model = PurchaseModel(**config.model_dump(), random_state=seed).fit(
            train[list(FEATURE_NAMES)],
            train[LABEL],
            groups=groups,
            lists=lists.to_numpy(),
            window_age=ages,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        start = time.perf_counter()
        margin = model.decision_function(matrix)
        predict = time.perf_counter() - start
        scored = frame.copy()
        scored[RAW_SCORE] = margin
        scored[PURCHASE_PROBABILITY] = model.calibrator_.predict(margin)
        reco = ranker.recommend(users, 10, filter_seen=False, candidates=scored)
        per_user = per_user_ranking_metrics(reco, relevant, 10)["ndcg@10"]
        results.append(per_user.rename(str(len(results))))
        base_at = int(entry.get("compare_to", 0))  # type: ignore[call-overload]
        interval = _paired(per_user, results, base_at, rng)
        clf = classifier_metrics(label, scored[PURCHASE_PROBABILITY])
        print(
            f"  #{len(results) - 1} {json.dumps(entry)}: ndcg@10 {per_user.mean():.4f}{interval} "
            f"auc {clf['auc']:.4f} logloss {clf['logloss']:.4f} ece {clf['ece']:.4f} "
            f"ece_q {clf.get('ece_quantile', float('nan')):.4f} "
            f"trees {model.best_iterations_} calib {model.calibrator_.method} "
            f"fit {wall:.1f}s wall {cpu:.1f}s cpu, predict {predict:.1f}s",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
