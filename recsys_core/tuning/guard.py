"""Tuning that cannot overfit a small window: keep a tuned setting only when its gain over
the defaults is outside the paired bootstrap interval.

On a small validation window (a hundred shoppers) the best of many trials is partly luck:
a search picks the settings that happen to suit those shoppers, and they can score worse
than the defaults on the test window. So after the search each model's best settings and
its defaults are scored per validation shopper, and a paired percentile bootstrap over the
shoppers gives the 95 % interval of the gain. The tuned settings stay only when the whole
interval lies above 0; otherwise the defaults are kept, and the saved result says so.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Protocol, TypeVar

import numpy as np

from recsys_core.metrics import UserBootstrap, percentile_interval


class Setting(Protocol):
    """What the guard reads of a setting: its model parameters and event weights."""

    params: dict[str, Any]
    weights: Any


S = TypeVar("S", bound=Setting)


def keep_only_real_gains(
    best: MutableMapping[str, S],
    defaults: MutableMapping[str, S],
    per_user_ndcg: Callable[[str, S], np.ndarray],
    *,
    seed: int = 42,
    n_resamples: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Set ``best[model]`` back to ``defaults[model]`` unless the gain is real (in place).

    Parameters
    ----------
    best, defaults:
        Per model, the search's best setting and the defaults' setting.
    per_user_ndcg:
        Refits ``model`` with a setting and returns each validation shopper's NDCG@k
        (the same shoppers, in the same order, for every call).
    seed, n_resamples:
        Of the paired bootstrap over the validation shoppers.

    Returns
    -------
    dict
        Per model: ``gain`` (mean NDCG difference), ``ci95``, ``validation_shoppers``,
        ``kept`` (``"tuned"`` or ``"defaults"``) and ``why`` (one sentence).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, chosen in list(best.items()):
        default = defaults.get(name)
        if default is None:
            continue
        if chosen.params == default.params and chosen.weights == default.weights:
            out[name] = {"kept": "defaults", "why": "the defaults scored best on validation"}
            continue
        gain = per_user_ndcg(name, chosen) - per_user_ndcg(name, default)
        n_users = len(gain)
        samples = UserBootstrap(n_users, n_resamples=n_resamples, seed=seed).means(gain[:, None])[
            :, 0
        ]
        low, high = percentile_interval(samples)
        real = bool(low > 0)
        if not real:
            best[name] = default
        why = (
            f"the tuned settings beat the defaults by {gain.mean():+.4f} NDCG "
            f"[{low:+.4f}, {high:+.4f}] over {n_users} validation shoppers"
        )
        if not real:
            why += (
                ": the interval includes 0 (the gain may be luck on this window), so the "
                "defaults are kept"
            )
        out[name] = {
            "gain": float(gain.mean()),
            "ci95": [low, high],
            "validation_shoppers": n_users,
            "kept": "tuned" if real else "defaults",
            "why": why,
        }
    return out
