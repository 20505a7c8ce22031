"""Every default model's metrics on the first N Online Retail customers, as JSON.

Run it in two trees to check that a change leaves the evaluation's figures unchanged::

    mkdir -p /tmp/old && git archive 5dc6c3d | tar -x -C /tmp/old
    ln -s "$PWD/data/online_retail.parquet" /tmp/old/data/
    (cd /tmp/old && PYTHONPATH=/tmp/old python "$OLDPWD/bench/or_slice_metrics.py") > /tmp/a.json
    PYTHONPATH=. python bench/or_slice_metrics.py > /tmp/b.json
    diff /tmp/a.json /tmp/b.json

Metrics are rounded to 6 decimals.
"""

from __future__ import annotations

import json
import sys

from recsys_core.data.builtin import load_dataset
from recsys_core.data.schema import Dataset
from recsys_core.evaluation import ALL_MODELS, EvaluationConfig, evaluate


def main() -> None:
    """Print the metrics of ``evaluate`` on the first ``argv[1]`` customers (default 800)."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    ds = load_dataset("online-retail")
    users = sorted(ds.events["user_id"].astype(str).unique())[:n]
    events = ds.events[ds.events["user_id"].astype(str).isin(users)].reset_index(drop=True)
    for column in ("user_id", "item_id"):
        events[column] = events[column].astype(str).astype("category")
    small = Dataset(events=events, catalog=ds.catalog, name="online-retail-slice")
    result = evaluate(small, EvaluationConfig(models=list(ALL_MODELS)))
    out: dict[str, object] = {
        m: {k: round(v, 6) for k, v in r.metrics.items()} for m, r in result.models.items()
    }
    out["classifier"] = {k: round(v, 6) for k, v in (result.classifier or {}).items()}
    # the order model and the overall (order x purchase) probability: their scalar figures
    for key in ("order_classifier", "overall_probability"):
        figures = getattr(result, key) or {}
        out[key] = {k: round(v, 6) for k, v in figures.items() if isinstance(v, float)}
    out["skipped"] = result.skipped
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
