"""Whole-document identity: a hash of the normalized text, so trivially different copies count as one."""
from __future__ import annotations

import hashlib
import re
import unicodedata

from udfs.collisions import expected_pairs

TEXT_HASH_BITS = 128

_SPACES = re.compile(r"\s+")


def normalize_text(text: str | None, casefold: bool = False) -> str:
    """NFC, whitespace runs -> one space, trimmed; case folded when asked."""
    t = _SPACES.sub(" ", unicodedata.normalize("NFC", text or "")).strip()
    return t.casefold() if casefold else t


def text_hash(text: str | None, casefold: bool = False) -> bytes:
    """128-bit blake2b of the normalized text (collisions: ``expected_false_text_pairs``, none in practice)."""
    return hashlib.blake2b(normalize_text(text, casefold).encode("utf-8", "surrogatepass"),
                           digest_size=TEXT_HASH_BITS // 8).digest()


def expected_false_text_pairs(n_docs: float, bits: int = TEXT_HASH_BITS) -> float:
    """Expected pairs of different texts sharing a ``bits``-bit text hash: n (n-1) / 2 / 2**bits (1.5e-19 for
    10**10 documents at 128 bits)."""
    return expected_pairs(n_docs, bits)
