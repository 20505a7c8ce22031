"""Scratch: where the overall probability (order x purchase) is off, fold by fold, and what
a map of the product fitted on the window before each fold would do (prints figures).

    OMP_NUM_THREADS=1 python bench/bench_overall_calibration.py [--folds 4]

Runs ``evaluate --dataset online-retail --models ranker --folds N`` and keeps, per fold, the
pairs its overall-probability block scores (every known shopper's served list, the order
probability and the purchase probability). Prints per fold both ECEs, the split of the mean
error into the order part and the purchase part (``overall_probability["parts"]``), and the
ECE after a map fitted on the *previous* fold's pairs (the models of the previous fold are
fitted one window earlier and score exactly the window before this fold's cutoff, which is
what a validation-window map of the product would learn from): Platt and isotonic
(:class:`recsys_core.ranking.calibration.Calibrator`, i.e. scikit-learn's
``LogisticRegression`` and ``IsotonicRegression``) and a plain rescaling of the mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import recsys_core.evaluation.fold as fold_module  # noqa: E402
from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.data.dataset import ID_COLUMNS, id_values  # noqa: E402
from recsys_core.evaluation import EvaluationConfig, evaluate  # noqa: E402
from recsys_core.metrics import classifier_metrics  # noqa: E402
from recsys_core.ranking.calibration import Calibrator  # noqa: E402


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()

    kept: list[pd.DataFrame] = []
    scored = fold_module.overall_probability_block

    def keep(served: pd.DataFrame, order: pd.Series, relevant: pd.DataFrame) -> Any:
        out = scored(served, order, relevant)
        users = id_values(served["user_id"])
        frame = pd.DataFrame(
            {
                "o": order.reindex(users).to_numpy(dtype=np.float64),
                "p": served["purchase_probability"].to_numpy(dtype=np.float64),
            }
        )
        keys = pd.MultiIndex.from_arrays([id_values(relevant[c]) for c in ID_COLUMNS])
        pairs = pd.MultiIndex.from_arrays([users, id_values(served["item_id"])])
        frame["y"] = pairs.isin(keys).astype(np.int8)
        frame = frame[np.isfinite(frame["o"])]
        frame.attrs["parts"] = out[0]["parts"]
        kept.append(frame)
        return out

    fold_module.overall_probability_block = keep  # type: ignore[assignment]
    data = load_dataset("online-retail")
    evaluate(data, EvaluationConfig(models=["ranker"], folds=args.folds))
    # each fold scores the block twice (after, then before the order model's recalibration):
    # the recalibrated one comes first
    folds = kept[::2]
    print("fold  ECE w / m  | mean pred  observed | order part  purchase part | prev-window maps")
    for k, frame in enumerate(folds):
        q = (frame["o"] * frame["p"]).to_numpy()
        y = frame["y"].to_numpy()
        m = classifier_metrics(y, q)
        gap = frame.attrs["parts"]["gap"]
        line = (
            f"{k}  {m['ece']:.4f} / {m['ece_quantile']:.4f} | {q.mean():.4f}  {y.mean():.4f} | "
            f"{gap['order_part']:+.4f}  {gap['purchase_part']:+.4f} |"
        )
        if k > 0:
            prev = folds[k - 1]
            qp, yp = (prev["o"] * prev["p"]).to_numpy(), prev["y"].to_numpy()
            maps = {
                "platt": Calibrator.fit("sigmoid", _logit(qp), yp).predict(_logit(q)),
                "isotonic": Calibrator.fit("isotonic", qp, yp).predict(q),
                "scale": np.clip(q * yp.sum() / qp.sum(), 0, 1),
            }
            for name, mapped in maps.items():
                mm = classifier_metrics(y, mapped)
                line += f" {name} {mm['ece']:.4f} / {mm['ece_quantile']:.4f};"
        print(line, flush=True)


if __name__ == "__main__":
    main()
