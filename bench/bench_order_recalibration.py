"""Which map recalibrates the order model on the window before the cutoff (prints figures).

For each 30-day test window of Online Retail's last four: the order model fitted at
``c - 30 d`` (events before it only, no recalibration) scores ``[c - 30 d, c)``; four maps
are fitted there (none, sigmoid on the logit, a logit shift matching the mean, isotonic) and
applied to the model fitted at ``c``, scored on ``[c, c + 30 d)``. Prints ECE (equal-width,
equal-mass), log loss, mean prediction and the observed rate. The lab uses the sigmoid
(``OrderModelConfig.recalibrate_on_validation_window``), chosen on the first three windows.

    OMP_NUM_THREADS=1 python bench/bench_order_recalibration.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from recsys_core.data.builtin import load_dataset  # noqa: E402
from recsys_core.metrics import classifier_metrics  # noqa: E402
from recsys_core.ranking.order_model import OrderModel, order_labels  # noqa: E402

H = pd.Timedelta(days=30)
CUTOFFS = ("2011-08-11", "2011-09-10", "2011-10-10", "2011-11-09")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _scored(events: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    model = OrderModel(recalibrate_on_validation_window=False).fit(
        events[events["timestamp"] < cutoff], cutoff=cutoff
    )
    label = model.features_.index.isin(order_labels(events, cutoff, cutoff + H))
    return label.astype(np.int64), model.predict_frame(model.features_)


def _mean_matching_shift(logit: np.ndarray, rate: float) -> float:
    """The logit shift that makes the mean probability equal ``rate``."""

    def gap(b: float) -> float:
        return float((1 / (1 + np.exp(-(logit + b)))).mean()) - rate

    return float(brentq(gap, -5, 5))


def main() -> None:
    events = load_dataset("online-retail").events
    for text in CUTOFFS:
        cutoff = pd.Timestamp(text)
        y_val, p_val = _scored(events, cutoff - H)
        y_test, p_test = _scored(events, cutoff)
        platt = LogisticRegression(C=1e6).fit(_logit(p_val)[:, None], y_val)
        shift = _mean_matching_shift(_logit(p_val), float(y_val.mean()))
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p_val, y_val)
        maps = {
            "none": p_test,
            "sigmoid": platt.predict_proba(_logit(p_test)[:, None])[:, 1],
            "shift": 1 / (1 + np.exp(-(_logit(p_test) + shift))),
            "isotonic": np.clip(iso.predict(p_test), 1e-6, 1 - 1e-6),
        }
        for name, prob in maps.items():
            m = classifier_metrics(y_test, prob)
            print(
                f"{text} {name:<9} ece {m['ece']:.4f} ece_q {m['ece_quantile']:.4f} "
                f"logloss {m['logloss']:.4f} mean {prob.mean():.4f} observed {y_test.mean():.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
