"""Stage one's ranks counted only where candidates need them equal the full stable sort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.columns import Columns
from recsys_core.ranking import candidates as stage_one
from recsys_core.ranking.config import RankerConfig
from recsys_core.ranking.training_frame import make_generator
from tests.conftest import SMALL_RANKER, SMALL_RANKER_CUTOFF


@pytest.mark.parametrize("ties", [False, True])
def test_cell_ranks_and_top_mask_equal_the_stable_sort(ties: bool) -> None:
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((40, 300))
    if ties:  # few distinct values, zeros and negative zeros: ties everywhere
        scores = np.round(scores * 2) / 2
        scores[scores == 0] = -0.0
        scores[:, ::7] = 0.0
    full = stage_one._ranks(scores)
    r, c = np.nonzero(rng.random(scores.shape) < 0.3)
    shuffled = rng.permutation(len(r))  # any order of cells
    np.testing.assert_array_equal(
        stage_one._cell_ranks(scores, r[shuffled], c[shuffled]), full[r[shuffled], c[shuffled]]
    )
    ordered = np.sort(scores, axis=1)
    np.testing.assert_array_equal(stage_one._cell_ranks(scores, r, c, ordered), full[r, c])
    for n in (1, 5, 37, 300, 500):
        np.testing.assert_array_equal(stage_one._top_mask(scores, n), full <= n)
        np.testing.assert_array_equal(stage_one._top_mask(scores, n, ordered), full <= n)
    positive = stage_one._positive_cell_ranks(scores, r, c)
    np.testing.assert_array_equal(positive, np.where(scores > 0, full, np.nan)[r, c])


def _reference_candidates(
    generator: stage_one.CandidateGenerator, users: list[str]
) -> pd.DataFrame:
    """The candidates as built before: every cell ranked by :meth:`_score_block`."""
    rows = generator.users_.to_internal(users)
    als, als_rank, knn, knn_rank = generator._score_block(rows)
    chosen = (als_rank <= generator.n_als) | (knn_rank <= generator.n_itemknn)
    hist_rows, hist_items = generator._history_cells(rows)
    chosen[hist_rows, hist_items] = True
    r, i = np.nonzero(chosen)
    return pd.DataFrame(
        {
            Columns.USER: np.asarray(users, dtype=object)[r],
            Columns.ITEM: generator.items_.to_external(i),
            "als_score": als[r, i],
            "als_rank": als_rank[r, i],
            "itemknn_score": knn[r, i],
            "itemknn_rank": knn_rank[r, i],
        }
    )


def test_candidates_and_pair_scores_equal_full_ranking(small_store) -> None:  # type: ignore[no-untyped-def]
    generator = make_generator(RankerConfig(**SMALL_RANKER)).fit(
        small_store.events, SMALL_RANKER_CUTOFF
    )
    users = [str(u) for u in generator.users_.external_ids[:120]]
    got = generator.candidates(users)
    want = _reference_candidates(generator, users)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    pairs = generator.score_pairs(got[Columns.USER].to_numpy(), got[Columns.ITEM].to_numpy())
    np.testing.assert_array_equal(
        pairs, want[["als_score", "als_rank", "itemknn_score", "itemknn_rank"]].to_numpy()
    )
