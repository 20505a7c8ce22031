"""The session cookie's script (issue 24, defect 2): what the browser is told to store.

The browser test (``test_e2e_browser.py``) checks the cookie a real Chromium keeps, the reload
and the log-out; these check the script's attributes and the token shape check without one.
"""

from __future__ import annotations

import re

import pytest

from ui import auth

TOKEN = "Abc_def-123" * 4


def test_the_cookie_holds_the_token_only_same_site_strict_until_the_session_ends() -> None:
    script = auth.cookie_script(TOKEN, 1_800_043_200.0)
    cookie = re.search(r'document\.cookie = "([^"]*)"', script)
    assert cookie is not None, script
    parts = [p.strip() for p in cookie.group(1).split(";")]
    assert parts[0] == f"{auth.cookie_name()}={TOKEN}"
    assert "SameSite=Strict" in parts and "Path=/" in parts
    assert "Expires=Fri, 15 Jan 2027 20:00:00 GMT" in parts  # an HTTP date, in GMT
    assert "'; Secure'" in script  # over HTTPS


def test_clearing_the_cookie_expires_it_in_the_past() -> None:
    script = auth.cookie_script(None, None)
    assert f"{auth.cookie_name()}=;" in script
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in script


@pytest.mark.parametrize("bad", ['x"; alert(1); "', "short", "a b c d e f g h i j k l m n o p"])
def test_only_a_token_shaped_value_is_written_or_read(bad: str) -> None:
    with pytest.raises(ValueError, match="not a session token"):
        auth.cookie_script(bad, 1_800_000_000.0)
    assert auth.cookie_token({auth.cookie_name(): bad}) is None
    assert auth.cookie_token({auth.cookie_name(): TOKEN}) == TOKEN
    assert auth.cookie_token({"other_cookie": TOKEN}) is None
