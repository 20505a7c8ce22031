"""Streamlit helpers shared by the pages: cached resources, session state, components.

Only the pages and this package import ``streamlit``; everything they show comes from
``recsys_core``. Modules:

- :mod:`ui.errors` — show a user-caused :class:`~recsys_core.errors.RecsysError` as ``st.error``;
- :mod:`ui.state` — the active dataset and other per-session state;
- :mod:`ui.resources` — cached datasets, trained labs (training on first start) and services;
- :mod:`ui.frames` — cached frames derived from the event log (funnel, activity, co-purchases);
- :mod:`ui.charts` — plotly figures (pure functions of frames);
- :mod:`ui.components` — reusable widgets (tables with downloads, pickers, item card);
- :mod:`ui.upload` — reading, mapping and validating an uploaded log;
- :mod:`ui.explanations` — "because you bought" without the ranker; SHAP on a sample of candidates;
- :mod:`ui.model_lab` — evaluation settings, the model-selection table and report export.
"""
