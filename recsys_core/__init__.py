"""recsys_core: the e-commerce recommendation lab's core, importable without Streamlit.

Layers (see DESIGN.md): data -> interactions/split -> models -> ranking -> evaluation ->
reporting / serving. Nothing here imports ``streamlit``.
"""

from __future__ import annotations

__version__ = "0.1.0"
