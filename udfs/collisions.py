"""Expected hash collisions: how many pairs of distinct items share a ``bits``-wide hash.

Each dedup key (MinHash band keys in ``udfs.minhash``, window hashes in ``udfs.exact_substring``, text hashes in
``udfs.dochash``) states its false merges through ``expected_pairs``; ``mdr scurve`` prints them at crawl scale.
"""
from __future__ import annotations


def expected_pairs(items: float, bits: int) -> float:
    """Expected pairs among ``items`` distinct things whose uniformly random ``bits``-bit hashes are equal:
    C(items, 2) / 2**bits (the birthday bound; about items**2 / 2**(bits + 1))."""
    return items * (items - 1) / 2 / 2.0 ** bits


def colliding_pairs(keys) -> int:
    """Observed pairs of equal values in a 1-D integer array (for checking ``expected_pairs`` by simulation)."""
    import numpy as np
    _, counts = np.unique(np.asarray(keys), return_counts=True)
    return int((counts * (counts - 1) // 2).sum())
