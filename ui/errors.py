"""Show errors a user can cause as ``st.error`` with their message, never as a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from recsys_core.errors import RecsysError


@contextmanager
def show_errors(*, stop: bool = True, prefix: str = "") -> Iterator[None]:
    """Turn a :class:`RecsysError` raised in the block into ``st.error(message)``.

    Parameters
    ----------
    stop:
        Stop the page run after showing the error (the default: what follows usually needs
        the block's result). With ``False`` the page goes on after the block.
    prefix:
        Text put before the message, e.g. ``"ALS: "`` in a column of several models.
    """
    try:
        yield
    except RecsysError as exc:
        st.error(f"{prefix}{exc}")
        if stop:
            st.stop()
