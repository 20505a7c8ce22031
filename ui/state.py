"""Per-session state: which dataset is active, uploaded logs, the chosen shopper and item.

A dataset is named by a *key*:

- a built-in name (``online-retail``, ``demo-store``);
- ``file:<path>`` for the log given by ``$RECSYS_APP_DATA``;
- ``upload:<sha256>`` for an uploaded log (keyed by the checksum of its validated events),
  stored encrypted in the uploader's workspace under ``$RECSYS_HOME/uploads`` and cached in
  the session; a new session (a page reload) lists the user's stored uploads and opens the
  one named by the ``dataset`` URL parameter.

Everything per user lives in ``st.session_state`` under the names below, never in module
globals. Functions that only read or write a mapping take it as an argument, so they can be
tested with a plain ``dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, cast

import streamlit as st

from recsys_core.data.builtin import BUILTIN_DATASETS, DEFAULT_DATASET
from recsys_core.settings import lab_settings

#: Session-state names.
DATASET_KEY = "dataset_key"
UPLOADS = "uploads"
UPLOAD_MESSAGE = "upload_message"
SHOPPER = "shopper_id"
#: Keys (and session-state names) of the Shopper page's lazy sections below its table.
SHOPPER_WHY, SHOPPER_SIDE_BY_SIDE, SHOPPER_HISTORY = (
    "shopper_why",
    "shopper_side_by_side",
    "shopper_past",
)
ITEM = "item_id"
EVALUATION = "evaluation"
STARTUP_WARNING = "startup_warning"

#: Environment variables choosing the initial dataset (a file wins over a built-in name).
ENV_DATA = "RECSYS_APP_DATA"
ENV_DATASET = "RECSYS_APP_DATASET"

FILE_PREFIX = "file:"
UPLOAD_PREFIX = "upload:"


def session_store(state: Mapping[str, Any] | None) -> MutableMapping[str, Any]:
    """``state``, or this session's ``st.session_state`` when ``None``."""
    if state is None:
        return cast(MutableMapping[str, Any], st.session_state)
    return cast(MutableMapping[str, Any], state)


def initial_dataset_key(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """The dataset a new session starts with, and a warning when the environment is wrong.

    ``$RECSYS_APP_DATA`` (a CSV/Parquet path) if set, else ``$RECSYS_APP_DATASET`` (a built-in
    name) if set, else :data:`~recsys_core.data.builtin.DEFAULT_DATASET`.
    """
    if environ is None:  # the lab's settings (recsys_core.settings), read once
        cfg = lab_settings()
        environ = {ENV_DATA: str(cfg.app_data or ""), ENV_DATASET: cfg.app_dataset or ""}
    env = environ
    path = env.get(ENV_DATA, "").strip()
    if path:
        return FILE_PREFIX + str(Path(path).expanduser().resolve()), None
    name = env.get(ENV_DATASET, "").strip()
    if name:
        if name in BUILTIN_DATASETS:
            return name, None
        return DEFAULT_DATASET, (
            f"{ENV_DATASET}={name!r} is not a built-in dataset ({', '.join(BUILTIN_DATASETS)}); "
            f"showing {DEFAULT_DATASET} instead"
        )
    return DEFAULT_DATASET, None


def ensure_session(state: MutableMapping[str, Any] | None = None) -> None:
    """Give a new session its initial dataset and an empty upload store.

    Called by the router and by every page (through :func:`ui.resources.active_data`).
    """
    store = session_store(state)
    if DATASET_KEY not in store:
        key, warning = initial_dataset_key()
        wanted = _url_dataset() if state is None else None
        if wanted:
            key, warning = wanted, None
        store[DATASET_KEY] = key
        if warning:
            store[STARTUP_WARNING] = warning
    if UPLOADS not in store:
        store[UPLOADS] = {}


#: URL parameter naming the active upload, so a page reload opens it again.
URL_DATASET = "dataset"


def _url_dataset() -> str | None:
    """The stored upload named by the ``dataset`` URL parameter, if it is this user's."""
    try:
        wanted = st.query_params.get(URL_DATASET)
    except Exception:  # no request context
        return None
    if wanted and str(wanted) in BUILTIN_DATASETS:  # a shared link to a built-in dataset
        return str(wanted)
    if not wanted or not str(wanted).startswith(UPLOAD_PREFIX):
        return None
    checksum = str(wanted)[len(UPLOAD_PREFIX) :]
    if any(u.checksum == checksum for u in stored_uploads()):
        return str(wanted)
    return None


def stored_uploads() -> list[Any]:
    """This user's uploads kept on disk (newest first)."""
    from recsys_core.security.uploads import list_uploads
    from ui.auth import owner

    return list_uploads(owner())


def remember_in_url(key: str) -> None:
    """Put an upload's key or a built-in name in the URL so a reload (or a shared link)
    reopens it (a ``$RECSYS_APP_DATA`` file path is never put there: it clears it)."""
    try:
        if key.startswith(UPLOAD_PREFIX) or key in BUILTIN_DATASETS:
            st.query_params[URL_DATASET] = key
        elif URL_DATASET in st.query_params:
            del st.query_params[URL_DATASET]
    except Exception:  # no request context (plain-dict tests)
        pass


def active_key(state: Mapping[str, Any] | None = None) -> str:
    """The key of the active dataset."""
    store = session_store(state)
    if DATASET_KEY not in store:
        ensure_session()
    return str(store[DATASET_KEY])


def set_active_key(key: str, state: MutableMapping[str, Any] | None = None) -> None:
    """Make ``key`` the active dataset; forget the shopper and item chosen on the old one."""
    store = session_store(state)
    if store.get(DATASET_KEY) != key:
        store[DATASET_KEY] = key
        for name in (SHOPPER, ITEM):
            if name in store:
                del store[name]


def dataset_options(state: Mapping[str, Any] | None = None) -> list[str]:
    """Keys the Data page offers: built-ins, the ``$RECSYS_APP_DATA`` file, uploads."""
    store = session_store(state)
    keys = list(BUILTIN_DATASETS)
    initial, _ = initial_dataset_key()
    if initial.startswith(FILE_PREFIX):
        keys.insert(0, initial)
    keys.extend(store.get(UPLOADS, {}))
    if state is None:
        for upload in stored_uploads():
            key = UPLOAD_PREFIX + upload.checksum
            if key not in keys:
                keys.append(key)
    current = store.get(DATASET_KEY)
    if current and current not in keys:
        keys.append(str(current))
    return keys


def dataset_label(key: str, state: Mapping[str, Any] | None = None) -> str:
    """A short human name for a dataset key."""
    if key.startswith(FILE_PREFIX):
        return f"{Path(key[len(FILE_PREFIX) :]).name} (file)"
    if key.startswith(UPLOAD_PREFIX):
        checksum = key[len(UPLOAD_PREFIX) :]
        name = checksum[:8]
        dataset = session_store(state).get(UPLOADS, {}).get(key)
        if dataset is not None:
            name = str(dataset.source).removeprefix("uploaded file ") or dataset.name
        elif state is None:
            name = next((u.file_name for u in stored_uploads() if u.checksum == checksum), name)
        return f"{name} (uploaded)"
    entry = BUILTIN_DATASETS.get(key)
    return f"{key} ({entry.kind})" if entry else key


# ------------------------------------------------------------------ shareable views (issue 16)

#: URL parameters of a page's view, besides ``dataset``: a link with them reopens the view.
VIEW_PARAMS: tuple[str, ...] = ("shopper", "model", "k", "item", "q")
#: Session-state name of the widget keys already given their URL value (once per session).
_URL_APPLIED = "url_applied"


def url_default(
    widget_key: str,
    name: str,
    cast: Callable[[str], Any] = str,
    valid: Callable[[Any], bool] | None = None,
) -> None:
    """Before a widget is drawn, give it the value of URL parameter ``name`` (once per
    session, and only when the widget has no value yet): a shared link reopens the view."""
    store = session_store(None)
    applied: set[str] = store.setdefault(_URL_APPLIED, set())
    if widget_key in applied:
        return
    applied.add(widget_key)
    try:
        raw = st.query_params.get(name)
    except Exception:  # no request context
        return
    if raw is None or widget_key in store:
        return
    try:
        value = cast(str(raw))
    except (TypeError, ValueError):
        return
    if valid is None or valid(value):
        store[widget_key] = value


def share_view(**fields: object) -> None:
    """Write the page's view (and the active dataset) into the URL; empty fields are left
    out, parameters of other pages are dropped."""
    try:
        params = st.query_params
        key = active_key()
        if key.startswith(UPLOAD_PREFIX) or key in BUILTIN_DATASETS:
            params[URL_DATASET] = key
        for name in VIEW_PARAMS:
            value = fields.get(name)
            if value is None or value == "":
                if name in params:
                    del params[name]
            elif params.get(name) != str(value):
                params[name] = str(value)
    except Exception:  # no request context (plain-dict tests)
        pass
