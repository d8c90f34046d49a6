"""Whole-document identity: a hash of the normalized text, so trivially different copies count as one."""
from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize_text(text: str | None, casefold: bool = False) -> str:
    """NFC, whitespace runs -> one space, trimmed; case folded when asked."""
    t = _SPACES.sub(" ", unicodedata.normalize("NFC", text or "")).strip()
    return t.casefold() if casefold else t


def text_hash(text: str | None, casefold: bool = False) -> bytes:
    """128-bit blake2b of the normalized text (collisions: ~N**2 / 2**129, none in practice)."""
    return hashlib.blake2b(normalize_text(text, casefold).encode("utf-8", "surrogatepass"), digest_size=16).digest()
