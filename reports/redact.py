"""Password masking, in one place for the study driver and the report (standard library only).

A storage URL's password is found by parsing the URL (``urllib.parse.urlsplit``), so a password
holding ``@`` or ``:`` (percent-encoded in the URL) is found whole; ``mask`` replaces it by ``***``
in ``scheme://user:***@host``, masks ``password=…`` pairs (a libpq query parameter) and, given the
decoded passwords as ``secrets``, every verbatim copy of them in driver messages.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["MASK", "mask", "password_of"]

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
_KEY_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)(\s*=\s*)[^&\s,;'\"]+")


def password_of(url: str) -> str | None:
    """The password inside a URL (percent-decoded), if any."""
    if not _URL.fullmatch(url):
        return None
    netloc = _netloc(url)
    userinfo, at, _ = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    password = userinfo.split(":", 1)[1]
    return unquote(password) if password else None


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc
    except ValueError:  # e.g. a malformed IPv6 host: the authority still ends at the next "/"
        return url.split("://", 1)[1].split("/", 1)[0]


def _mask_url(url: str) -> str:
    netloc = _netloc(url)
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return url.replace(netloc, f"{user}:{MASK}@{host}", 1)


def mask(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL password, ``password=…`` pair and each of ``secrets`` masked."""
    masked = _URL.sub(lambda m: _mask_url(m.group(0)), text)
    masked = _KEY_PASSWORD.sub(rf"\1\2{MASK}", masked)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, MASK)
    return masked
