"""Expected false merges of the dedup keys at crawl scale, for ``mdr scurve``: what a key width costs in accidental
collisions at 10**9 and 10**10 documents, per MinHash preset and for the exact-dedup hashes.

Each number is an expected count of pairs of unrelated documents (or windows) whose keys are equal by chance, from
the function of the module that owns the hash: ``udfs.minhash.expected_false_merges`` (band keys),
``udfs.dochash.expected_false_text_pairs`` (text hash), ``udfs.exact_substring.expected_false_windows`` (windows;
W = documents x tokens per document, an assumption the table states). Graph nodes are positions
(part, row), not hashes: they never collide.
"""
from __future__ import annotations

from pipeline.core.config import Config
from udfs.dochash import TEXT_HASH_BITS, expected_false_text_pairs
from udfs.exact_substring import HASH_BITS, expected_false_windows
from udfs.minhash import KEY_BITS, PRESETS, expected_false_merges

SIZES = (10 ** 9, 10 ** 10)
TOKENS_PER_DOC = 1000


def _row(label: str, bits: int, fn, configured: bool = False) -> str:
    nums = "".join(f"{fn(n):>11.3g}" for n in SIZES)
    return f"  {label:<36}{bits:>5}{nums}{'  <- configured' if configured else ''}"


def format_false_merges(cfg: Config, tokens_per_doc: int = TOKENS_PER_DOC) -> str:
    """The table: fuzzy band keys per preset (and the configured numbers if no preset has them) at each width,
    graph node ids, text hash, substring windows at each width."""
    fz, ex = cfg.dedup_fuzzy, cfg.dedup_exact
    mine = fz.params()
    presets = dict(PRESETS)
    if all((p.bands, p.rows) != (mine.bands, mine.rows) for p in presets.values()):
        presets["configured"] = mine
    sizes = "".join(f"{f'n=1e{len(str(n)) - 1}':>11}" for n in SIZES)
    lines = ["Expected false merges at n documents (pairs of unrelated documents, or windows, with equal keys by "
             "chance):",
             f"  {'key':<36}{'bits':>5}{sizes}",
             "  dedup_fuzzy band keys, one key space for all bands: n(n-1)/2 * bands^2 / 2^bits"]
    for name, p in presets.items():
        for bits in KEY_BITS:
            lines.append(_row(f"{name} ({p.bands} bands)", bits,
                              lambda n, b=p.bands, w=bits: expected_false_merges(n, b, w),
                              (p.bands, p.rows) == (mine.bands, mine.rows) and bits == fz.key_bits))
    lines.append(_row("dedup_fuzzy graph nodes (part, row)", 64, lambda n: 0))
    lines.append("  dedup_exact text hash (blake2b): n(n-1)/2 / 2^bits")
    lines.append(_row("documents", TEXT_HASH_BITS, expected_false_text_pairs))
    lines.append(f"  dedup_exact substring windows, W = n * {tokens_per_doc:,} tokens per document (assumed): "
                 "W(W-1)/2 / 2^bits")
    for bits in HASH_BITS:
        lines.append(_row(f"windows (k={ex.k})", bits, lambda n, w=bits: expected_false_windows(n * tokens_per_doc, w),
                          bits == ex.hash_bits))
    return "\n".join(lines)
