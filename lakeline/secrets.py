"""Passwords out of every output: masking of connection descriptions and of free text.

A password reaches lakeline in a URL's userinfo (``postgresql://u:pw@h/db``), a URL query
parameter (``?password=pw``), a libpq keyword string (``host=h password=pw dbname=db``, quoted
``password='p w'`` too), or JSON (a Secrets Manager secret's ``"password": "pw"``). :func:`mask`
replaces the value in each of these forms by ``***``, and every value handed to
:func:`register` (the passwords of the connections this process parsed) wherever it appears —
so an error text that echoes a password in some other shape is masked too. Apply it to every
text that describes a source or target or carries a driver's error, before it is printed,
logged, stored or notified.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "is_secret_key", "mask", "mask_error", "mask_url", "register"]

MASK = "***"
#: keys whose value is a secret: password, sslpassword, passwd, pwd, *secret*, *token*, api keys
_KEY = r"[A-Za-z_]*(?:password|passwd|pwd|secret|token|api_?key)[A-Za-z_]*"
#: ``key=value`` (libpq keyword strings, URL queries, free text): a quoted value, else up to a
#: blank, ``&`` or ``"``; ``secret_id`` / ``secret_name`` name a secret, they are not one
_KEY_VALUE = re.compile(
    rf"(?i)(?<![\w.])(?!\w*secret_(?:id|name|arn)\b)({_KEY})(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&\"]*)")
_JSON_VALUE = re.compile(rf'(?i)("{_KEY}"\s*:\s*)"(?:[^"\\]|\\.)*"')
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s\"'<>]*)")
#: shorter values would mask ordinary characters all over a text
_MIN_REGISTERED = 4
_known: set[str] = set()


def is_secret_key(key: str) -> bool:
    """True for a parameter name whose value is a secret (``password``, ``sslpassword``, …)."""
    return _KEY_VALUE.fullmatch(f"{key}=x") is not None


def register(*values: str | None) -> None:
    """Remember secret values (and their URL-encoded forms) so :func:`mask` hides them anywhere."""
    for value in values:
        if value and len(value) >= _MIN_REGISTERED:
            _known.update({value, quote(value, safe=""), quote_plus(value)})


def _mask_userinfo(m: re.Match[str]) -> str:
    scheme, rest = m.group(1), m.group(2)
    # the userinfo ends at the last '@' before the query: a password may hold '/' or '@'
    authority = re.split(r"[?#]", rest, maxsplit=1)[0]
    at = authority.rfind("@")
    user = authority[: authority.find(":")]
    if at < 0 or ":" not in authority[:at] or "/" in user:  # a path such as file:///a:b/c@d
        return m.group(0)
    return f"{scheme}{user}:{MASK}{rest[at:]}"


def mask(text: str) -> str:
    """``text`` with every password masked: URL userinfo, ``key=value`` pairs of URL queries and
    libpq keyword strings, JSON ``"password": "…"`` members and registered values."""
    for value in sorted(_known, key=len, reverse=True):  # longest first: a value may hold another
        # whole values only: a password "postgres" must not turn "postgresql://" into "***ql://"
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", MASK, text)
    text = _URL.sub(_mask_userinfo, text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}" if m.group(3) else m.group(0), text)
    return _JSON_VALUE.sub(lambda m: f'{m.group(1)}"{MASK}"', text)


def mask_url(url: object) -> str:
    """A source or target description (a URL, a keyword string, a path) safe to print."""
    return mask(str(url))


def mask_error(exc: BaseException) -> str:
    """``Type: first line of the message``, masked: an exception as one printable line."""
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {mask(first)}"
