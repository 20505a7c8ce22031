"""Privacy and access control: users and roles, sessions, the audit log, pseudonyms, encryption.

One module per concern, none of them imports Streamlit:

- :mod:`~recsys_core.security.settings` -- limits and durations (environment variables);
- :mod:`~recsys_core.security.db` -- the SQLite database under ``$RECSYS_HOME``;
- :mod:`~recsys_core.security.users` -- users, roles and Argon2id password hashes;
- :mod:`~recsys_core.security.sessions` -- log-in, throttling, revocable server-side sessions;
- :mod:`~recsys_core.security.audit` -- the append-only, hash-chained audit log;
- :mod:`~recsys_core.security.keys` -- secret key files (0600) under ``$RECSYS_HOME/keys``;
- :mod:`~recsys_core.security.pseudonyms` -- keyed HMAC-SHA256 shopper pseudonyms;
- :mod:`~recsys_core.security.encryption` -- Fernet/MultiFernet encryption at rest;
- :mod:`~recsys_core.security.exports` -- CSV/Excel formula-injection neutralising;
- :mod:`~recsys_core.security.uploads` -- encrypted per-user upload workspaces;
- :mod:`~recsys_core.security.forget` -- the right to be forgotten.
"""

from __future__ import annotations
