"""Audit log (admin): who did what, filtered; the chain's integrity; a CSV export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys_core.security import audit
from recsys_core.security.exports import to_csv_bytes
from ui import auth

st.title("Audit log")
check = audit.verify()
if check.ok:
    st.success(f"Chain intact: {check.rows:,} rows, hashes and chain head match.")
else:
    st.error(f"The audit log was tampered with: {check.problem}")

cols = st.columns(3)
actor = cols[0].text_input("Actor (exact, e.g. app:ann or cli:root)", key="audit_actor")
action = cols[1].text_input("Action (exact, e.g. login-failed)", key="audit_action")
contains = cols[2].text_input("Text in the detail", key="audit_text")
rows = audit.read(
    actor=actor.strip() or None,
    action=action.strip() or None,
    contains=contains.strip() or None,
    limit=2000,
)
frame = pd.DataFrame(rows, columns=list(audit.COLUMNS))
st.caption(f"{len(frame):,} rows (newest first, at most 2,000).")
st.dataframe(frame[["id", "ts", "actor", "action", "detail"]], hide_index=True, key="audit_table")
if st.download_button(
    "Download CSV",
    to_csv_bytes(frame),
    file_name="audit-log.csv",
    mime="text/csv",
    key="audit_download",
    icon=":material/download:",
):
    auth.record("audit-export", {"rows": len(frame)})
