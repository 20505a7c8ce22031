"""The offline money per shopper under merchandising rules, for the Merchandising page's
preview and the Decision page (:mod:`recsys_core.merchandising_offline` computes it).

The model fitted on the recorded test window's training part is the slow step: it is done
once per process for each (version, model, k) with a progress bar and kept in a shared
store (the newest :data:`KEEP` windows); each rule set's figure is then a few hundred lists
and is remembered per session.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from recsys_core.merchandising import MerchandisingRule

if TYPE_CHECKING:  # the offline module pulls in evaluation: imported when first used
    from recsys_core.merchandising_offline import OfflineEffect, OfflineWindow

#: Fitted windows kept per process.
KEEP = 2
#: Session-state name of the last figures per (window, rule sets).
_EFFECTS = "offline_money_effects"


@st.cache_resource(show_spinner=False)
def _windows() -> dict[str, OfflineWindow]:
    """Fitted offline windows of this process by (version folder, model, k)."""
    return {}


def recorded_k(svc: Any) -> int:
    """The list length the version's figures were recorded with (10 when none are)."""
    return int((svc.lab.manifest.get("metrics") or {}).get("k") or 10)


def _key(svc: Any, model: str, k: int) -> str:
    return f"{svc.lab.path}|{model}|{k}"


def window_ready(svc: Any, model: str, k: int) -> bool:
    """Whether the window of ``model`` is already fitted in this process."""
    return _key(svc, model, k) in _windows()


def offline_window(data: Any, svc: Any, model: str, k: int) -> OfflineWindow:
    """The recorded window with ``model`` fitted on its training part (fitted once per process,
    with a progress bar)."""
    from recsys_core.merchandising_offline import fit_offline_window

    store = _windows()
    key = _key(svc, model, k)
    if key not in store:
        bar = st.progress(0.0, text=f"fitting {model} on the recorded window's training part")

        def report(message: str, fraction: float) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{model}: {message}")

        window = fit_offline_window(
            data.dataset,
            model,
            train_config=svc.lab.manifest.get("config") or {},
            k=k,
            progress=report,
        )
        bar.empty()
        store[key] = window
        for old in list(store)[:-KEEP]:
            store.pop(old, None)
    return store[key]


def _rules_key(rules: Sequence[MerchandisingRule]) -> str:
    return json.dumps([r.to_dict() for r in rules], sort_keys=True)


def effect(
    data: Any,
    svc: Any,
    model: str,
    before: Sequence[MerchandisingRule],
    after: Sequence[MerchandisingRule],
) -> OfflineEffect:
    """The offline money per shopper of ``model`` with the ``before`` and ``after`` rule sets
    (computed once per session for each pair, on :data:`~recsys_core.merchandising_offline.
    DEFAULT_SAMPLE` test shoppers)."""
    from recsys_core.merchandising_offline import DEFAULT_SAMPLE, offline_effect

    k = recorded_k(svc)
    window = offline_window(data, svc, model, k)
    memo: dict[str, OfflineEffect] = st.session_state.setdefault(_EFFECTS, {})
    key = "|".join([_key(svc, model, k), _rules_key(before), _rules_key(after)])
    if key not in memo:
        bar = st.progress(0.0, text="listing the sample of test shoppers")

        def report(message: str, fraction: float) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

        memo[key] = offline_effect(
            window, before, after, sample_size=DEFAULT_SAMPLE, progress=report
        )
        bar.empty()
        for old in list(memo)[:-8]:
            memo.pop(old, None)
    return memo[key]


def sample_size() -> int:
    """How many test shoppers the figures are computed on (at most)."""
    from recsys_core.merchandising_offline import DEFAULT_SAMPLE

    return DEFAULT_SAMPLE
