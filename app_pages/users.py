"""Users (admin): who may log in and with which role; add, change role, reset, remove."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys_core.errors import RecsysError
from recsys_core.security import users
from recsys_core.security.users import ROLES
from ui import auth

st.title("Users")
st.caption(
    "viewer: browse recommendations with pseudonymised shoppers · analyst: also upload, "
    "train, evaluate and export · admin: also operations, users, the audit log and revealing "
    "a real shopper id (audited). A password change or removal ends that user's sessions."
)

rows = users.list_users()
st.dataframe(
    pd.DataFrame(
        {
            "user": [u.username for u in rows],
            "role": [u.role for u in rows],
            "created": [pd.Timestamp(u.created, unit="s").strftime("%Y-%m-%d %H:%M") for u in rows],
        }
    ),
    hide_index=True,
    key="users_table",
)

add, change = st.columns(2)
with add, st.form("users_add", clear_on_submit=True):
    st.subheader("Add a user")
    name = st.text_input("User name")
    role = st.selectbox("Role", ROLES)
    password = st.text_input("Password (at least 8 characters)", type="password")
    if st.form_submit_button("Add"):
        try:
            users.add_user(name.strip(), password, role)
        except RecsysError as exc:
            st.error(str(exc))
        else:
            auth.record("user-add", {"user": name.strip(), "role": role})
            st.rerun()

with change:
    st.subheader("Change a user")
    names = [u.username for u in rows]
    who = st.selectbox("User", names, key="users_pick")
    new_role = st.selectbox("New role", ROLES, key="users_role")
    if st.button("Set role", key="users_set_role") and who:
        users.set_role(who, new_role)
        auth.record("user-role", {"user": who, "role": new_role})
        st.rerun()
    new_password = st.text_input("New password", type="password", key="users_new_pw")
    if st.button("Reset password", key="users_reset") and who:
        try:
            users.set_password(who, new_password)
        except RecsysError as exc:
            st.error(str(exc))
        else:
            auth.record("user-passwd", {"user": who})
            st.success(f"Password of {who} changed; their sessions have ended.")
    me = auth.current_user()
    if st.button("Remove user", key="users_remove") and who:
        if me is not None and who == me.username:
            st.error("You cannot remove yourself here; use `python -m recsys_core users remove`.")
        else:
            users.remove_user(who)
            auth.record("user-remove", {"user": who})
            st.rerun()
