"""The snapshot: every group's table at a cutoff, and the features of any pairs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.interactions import IdMap
from recsys_core.ranking.features.frames import FeatureEngine
from recsys_core.ranking.features.names import _BEHAVIOUR_LEVELS
from recsys_core.ranking.features.past import PairLookup, PastEvents, _lookup
from recsys_core.ranking.features.persistence import CORE_ARRAYS, load_snapshot, save_snapshot
from recsys_core.ranking.features.registry import REGISTRY, FeatureRegistry


@dataclass(frozen=True)
class BehaviourSnapshot:
    """Behaviour tables of an event log as it was at ``cutoff``.

    Build one with :meth:`from_events`; gather the features of pairs with :meth:`features`.

    Attributes
    ----------
    cutoff:
        Only events strictly before this instant were used.
    users, items:
        Users with at least one event before the cutoff; items with an event before the
        cutoff or in the catalog.
    pair_keys, pair_values:
        Sorted keys ``user * n_items + item`` of pairs with history and their pair-level
        features (:data:`PAIR_FEATURES`, float64).
    user_values, item_values:
        User-level features per user and item-level features per item.
    tables:
        The ``lookup`` groups' tables (e.g. the affinity group's ``item_category``,
        ``category_keys``, ``user_typical_price``).
    registry:
        The feature groups the tables were built with (not saved).
    """

    cutoff: pd.Timestamp
    users: IdMap
    items: IdMap
    pair_keys: np.ndarray
    pair_values: np.ndarray
    user_values: np.ndarray
    item_values: np.ndarray
    tables: Mapping[str, np.ndarray]
    registry: FeatureRegistry = field(default=REGISTRY, repr=False, compare=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        cutoff: pd.Timestamp,
        catalog: pd.DataFrame | None = None,
        registry: FeatureRegistry = REGISTRY,
        *,
        engine: FeatureEngine = "embedded",
        spark_master: str | None = None,
    ) -> BehaviourSnapshot:
        """Aggregate the events strictly before ``cutoff`` into every group's table.

        Parameters
        ----------
        events:
            Canonical event log with ``timestamp`` (``quantity`` and ``price`` optional).
            Events at or after ``cutoff`` are ignored.
        cutoff:
            The instant the features describe.
        catalog:
            Optional catalog (``item_id`` and where known ``category``, ``brand``);
            catalog items without events get item features too. Its ``price`` is ignored:
            prices come from the events before the cutoff only.
        registry:
            The feature groups (default :data:`REGISTRY`).
        engine, spark_master:
            Where the groups written in Narwhals run (:mod:`.frames`): ``embedded`` (default,
            pandas in this process) or ``spark`` (the same expressions on Spark).

        Raises
        ------
        DataValidationError
            No timestamps, or no event before the cutoff.
        """
        past = PastEvents(events, cutoff, catalog, engine=engine, spark_master=spark_master)
        tables: dict[str, np.ndarray] = {}
        for group in registry.groups_at("lookup"):
            if group.tables is not None:
                made = group.tables(past)
                clash = set(made) & (set(tables) | set(CORE_ARRAYS) | {"cutoff_ns"})
                if clash:
                    raise ValueError(f"feature group {group.name!r} reuses tables {sorted(clash)}")
                tables.update(made)
        return cls(
            cutoff=past.cutoff,
            users=past.users,
            items=past.items,
            pair_keys=past.pair_keys.astype(np.int64),
            pair_values=registry.table("pair", past, past.n_pairs),
            user_values=registry.table("user", past, past.n_users),
            item_values=registry.table("item", past, past.n_items),
            tables=tables,
            registry=registry,
        )

    # ------------------------------------------------------------------ lookups

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns of :meth:`features` (:data:`BEHAVIOUR_FEATURES` by default)."""
        return self.registry.names(*_BEHAVIOUR_LEVELS)

    def features(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """:attr:`feature_names` of pairs given by snapshot indices.

        Parameters
        ----------
        user_rows, item_rows:
            Same-length arrays of indices into :attr:`users` and :attr:`items` (all
            ``>= 0``: map external ids with :meth:`IdMap.to_internal` and check first).

        Returns
        -------
        numpy.ndarray
            ``(n_pairs, len(feature_names))`` float64.
        """
        u = np.asarray(user_rows, dtype=np.int64)
        i = np.asarray(item_rows, dtype=np.int64)
        n = len(u)
        found, pos = _lookup(self.pair_keys, u * np.int64(len(self.items)) + i)
        pair = np.empty((n, self.pair_values.shape[1]))
        pair[:] = self.registry.pair_defaults()  # e.g. NaN days since, for pairs without history
        pair[found] = self.pair_values[pos[found]]
        user = self.user_values[u]
        item = self.item_values[i]
        looked_up = self.registry.table(
            "lookup", PairLookup(u, i, self.tables, user, item, self.registry), n
        )
        return np.hstack([pair, user, item, looked_up])

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Write the tables to ``folder`` (``users.npy``, ``items.npy``, ``tables.npz``)."""
        save_snapshot(self, folder)

    @classmethod
    def load(cls, folder: Path, registry: FeatureRegistry = REGISTRY) -> BehaviourSnapshot:
        """Read tables written by :meth:`save` (with the same feature groups).

        Raises
        ------
        ArtifactError
            Missing or corrupted files, or tables of inconsistent shapes.
        """
        return load_snapshot(cls, folder, registry)
