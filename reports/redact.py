"""Secret masking, in one place for the study driver and the report (standard library only).

Every URL in a text is parsed, never searched for a secret's characters: its password (the
userinfo after ``user:``) and the value of every query parameter whose name contains ``pass``,
``secret``, ``token``, ``key`` or ``pwd`` become ``***``; a URL that cannot be parsed
unambiguously (an ``@`` after its authority — an unencoded ``/``, ``?`` or ``#`` in the
password —, a bad port or IPv6 host) is masked whole, ``scheme://***``. Outside URLs,
``name=value`` pairs whose name holds ``pass``, ``secret``, ``token``, ``pwd`` or ``api_key``
are masked too (a libpq keyword string).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "mask", "mask_url", "password_of"]

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NAME = r"[\w.-]*(?:pass|secret|token|key|pwd)[\w.-]*"
_SENSITIVE = re.compile(rf"(?i)^{_NAME}$")
#: Outside URLs, a narrower rule (free text holds words like "monkey=3"): libpq keywords.
_PAIR = re.compile(r"(?i)\b([\w.-]*(?:pass|secret|token|pwd|api_?key)[\w.-]*)(\s*=\s*)[^&\s,;'\"]+")


def _split(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, authority, rest)``, or None when the URL is ambiguous or malformed."""
    head, _, tail = url.partition("://")
    cut = min((i for i in (tail.find(c) for c in "/?#") if i >= 0), default=len(tail))
    authority, rest = tail[:cut], tail[cut:]
    if "@" in rest:
        return None  # an "@" past the authority: a password holding "/", "?" or "#"
    try:
        urlsplit(url).port  # noqa: B018 (raises ValueError on a bad port or IPv6 host)
    except ValueError:
        return None
    return head + "://", authority, rest


def _mask_query(rest: str) -> str:
    path, q, query = rest.partition("?")
    if not q:
        return rest
    query, hash_, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if eq and _SENSITIVE.match(unquote(name)) else pair)
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values masked (whole when it will not parse)."""
    parts = _split(url)
    if parts is None:
        return url.partition("://")[0] + "://" + MASK
    head, authority, rest = parts
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return head + authority + _mask_query(rest)


def password_of(url: str) -> str | None:
    """The password inside a URL (percent-decoded), if any."""
    parts = _split(url) if _URL.fullmatch(url) else None
    if parts is None:
        return None
    userinfo, at, _ = parts[1].rpartition("@")
    if not at or ":" not in userinfo:
        return None
    password = userinfo.split(":", 1)[1]
    return unquote(password) if password else None


def mask(text: str) -> str:
    """``text`` with every URL masked (``mask_url``) and every secret ``name=value`` pair."""
    masked = _URL.sub(lambda m: mask_url(m.group(0)), text)
    return _PAIR.sub(rf"\1\2{MASK}", masked)
