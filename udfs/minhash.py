"""MinHash signatures and LSH band keys for fuzzy deduplication, on plain strings with numpy.

Pipeline per document: ``normalize`` (lowercase, punctuation removed, whitespace collapsed) ->
word n-gram ``shingles`` (32-bit ids) -> ``MinHasher.signatures`` (``num_hashes`` minima) ->
``MinHasher.band_keys`` (one 64- or 128-bit key per band of ``rows`` minima, ``key_bits``). Two documents are
candidate duplicates when they share a band key; the S-curve ``p(J) = 1 - (1 - J**rows)**bands`` gives the
chance of that for Jaccard similarity ``J`` of their shingle sets (``mdr scurve``, ``python -m udfs.minhash scurve``).

Rule for empty and short documents (documented, tested): a document with no word after
normalization has no shingles and no band keys, so it is never a fuzzy duplicate (the quality
filters are the place to drop empty pages). A document with 1 to ``ngram - 1`` words has exactly
one shingle, its whole word sequence: identical short documents collide in every band and
collapse, a short document never matches a different or a longer one.

Everything is integer arithmetic on numpy arrays with parameters derived from ``seed`` by
splitmix64 (no float, no numpy RNG stream), so band keys are bit-identical on every machine and
numpy version, which is what makes the stage's output independent of where a document is hashed.

Key width: the band index is mixed into the key (one key space for all bands), so with n documents of b bands two
unrelated documents share a key by accident ``n (n - 1) / 2 * b**2 / 2**key_bits`` times in expectation
(``expected_false_merges``): each such pair is a false edge of the duplicate graph. At 64 bits that is ~5,500 pairs
for refinedweb's 450 bands at 10**9 documents and ~550,000 at 10**10 (fineweb's 14 bands: ~5 and ~530); at 128 bits
(``key_bits=128``: a second 64-bit key from an independent chain, beside the first, which is the 64-bit key) it is
below 10**-13.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from udfs.collisions import expected_pairs

_U64 = np.uint64
_GOLDEN = 0x9E3779B97F4A7C15
_GOLDEN2 = 0xD6E8FEB86659FD93  # the second half of a 128-bit band key: another odd multiplier, another seed stream
KEY_BITS = (64, 128)
_MASK64 = (1 << 64) - 1
_NON_WORD = re.compile(r"[^\w\s]|_")


# --------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class MinHashParams:
    """How many hashes, how they are banded, and the shingle size; ``bands * rows == num_hashes``."""
    num_hashes: int
    bands: int
    rows: int
    ngram: int = 5
    seed: int = 1
    key_bits: int = 64

    def __post_init__(self) -> None:
        for name in ("num_hashes", "bands", "rows", "ngram"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.key_bits not in KEY_BITS:
            raise ValueError(f"key_bits must be 64 or 128, got {self.key_bits}")
        if self.bands * self.rows != self.num_hashes:
            raise ValueError(f"bands x rows must equal num_hashes: {self.bands} x {self.rows} = "
                             f"{self.bands * self.rows}, but num_hashes = {self.num_hashes}; "
                             f"e.g. refinedweb uses 450 x 20 = 9000, fineweb 14 x 8 = 112")

    @property
    def name(self) -> str:
        """Parameters in a name, as datatrove prints them: ``5ng_450b_20r_9000h`` (``_128bit`` after it for 128-bit
        band keys: keys of another width never compare equal, so the name tells them apart)."""
        base = f"{self.ngram}ng_{self.bands}b_{self.rows}r_{self.num_hashes}h"
        return base if self.key_bits == 64 else f"{base}_{self.key_bits}bit"


PRESETS: dict[str, MinHashParams] = {
    "refinedweb": MinHashParams(num_hashes=9000, bands=450, rows=20, ngram=5),  # Penedo et al. 2023
    "fineweb": MinHashParams(num_hashes=112, bands=14, rows=8, ngram=5),        # Penedo et al. 2024
}


def resolve_params(preset: str, num_hashes: int | None = None, bands: int | None = None, rows: int | None = None,
                   ngram: int | None = None, seed: int = 1, key_bits: int = 64) -> MinHashParams:
    """A preset's numbers, each overridden where given; ``custom`` needs all of them."""
    if preset == "custom":
        base = None
        missing = [k for k, v in (("num_hashes", num_hashes), ("bands", bands), ("rows", rows)) if v is None]
        if missing:
            raise ValueError(f"preset custom needs {', '.join(missing)} set")
    elif preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"unknown MinHash preset {preset!r}; available: {', '.join(PRESETS)}, custom")
    return MinHashParams(num_hashes=num_hashes if num_hashes is not None else base.num_hashes,
                         bands=bands if bands is not None else base.bands,
                         rows=rows if rows is not None else base.rows,
                         ngram=ngram if ngram is not None else (base.ngram if base else 5),
                         seed=seed, key_bits=key_bits)


# --------------------------------------------------------------------------- S-curve

def catch_probability(jaccard: float, bands: int, rows: int) -> float:
    """Chance that two documents with this Jaccard similarity share at least one band key."""
    return 1.0 - (1.0 - jaccard ** rows) ** bands


def threshold_50(bands: int, rows: int) -> float:
    """The Jaccard similarity caught with probability 1/2 (closed form of the S-curve)."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def scurve(params: MinHashParams, sims: Iterable[float] | None = None) -> list[tuple[float, float]]:
    """(Jaccard, catch probability) points of a configuration's S-curve."""
    sims = list(sims) if sims is not None else [i / 20 for i in range(21)]
    return [(s, catch_probability(s, params.bands, params.rows)) for s in sims]


def format_scurve(params: MinHashParams, title: str = "", sims: Iterable[float] | None = None) -> str:
    """The S-curve as a table, for ``mdr scurve`` and ``python -m udfs.minhash scurve``."""
    head = f"MinHash LSH {title + ' ' if title else ''}({params.name}): P(caught) = 1 - (1 - J^{params.rows})^{params.bands}"
    lines = [head, "  Jaccard  P(caught)"]
    sims = sims or [0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
    for s, p in scurve(params, sims):
        lines.append(f"  {s:7.2f}  {p:9.4f}")
    lines.append(f"  50% point: J = {threshold_50(params.bands, params.rows):.4f}")
    return "\n".join(lines)


def expected_false_merges(n_docs: float, bands: int, key_bits: int) -> float:
    """Expected pairs of unrelated documents that share a band key by accident (a false edge, merging their
    clusters): keys of different documents, ``n (n-1)/2 * bands**2`` pairs, each equal with chance 2**-key_bits
    (every band's keys live in one key space, the band index mixed in; pairs within a document merge nothing)."""
    return expected_pairs(n_docs * bands, key_bits) - n_docs * expected_pairs(bands, key_bits)


# --------------------------------------------------------------------------- hashing primitives

def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on a uint64 array: a bijection whose output bits all depend on all input bits."""
    z = z ^ (z >> _U64(30))
    z = z * _U64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> _U64(27))
    z = z * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _stream(seed: int, tag: int, n: int) -> np.ndarray:
    """``n`` pseudo-random uint64 words for (seed, tag): splitmix64, stable across numpy versions."""
    start = (seed * 0x632BE59BD9B4E019 + tag * _GOLDEN) & _MASK64
    return mix64(np.arange(n, dtype=_U64) * _U64(_GOLDEN) + _U64(start))


@lru_cache(maxsize=8)
def _byte_table(seed: int) -> np.ndarray:
    """Tabulation-hash table: one random word per (position in word mod 64, byte value)."""
    return _stream(seed, 1, 64 * 256).reshape(64, 256)


# --------------------------------------------------------------------------- text -> shingles

def normalize(text: str) -> str:
    """Lowercase, drop punctuation and symbols (anything neither a word character nor space, and '_'),
    collapse whitespace to single spaces. Combining marks count as punctuation here, so accents
    written in decomposed form fold away."""
    return " ".join(_NON_WORD.sub("", text.lower()).split())


def word_hashes(norm: str, seed: int = 1) -> np.ndarray:
    """64-bit hash of every word of a normalized string, vectorized over its UTF-8 bytes.

    Simple tabulation hashing (XOR of a random word per (position, byte)), then the word length
    mixed in by splitmix64: no Python loop per word.
    """
    if not norm:
        return np.zeros(0, dtype=_U64)
    b = np.frombuffer(norm.encode("utf-8"), dtype=np.uint8)
    is_space = b == 32
    spaces = np.flatnonzero(is_space)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [b.size]))
    pos = np.arange(b.size) - starts[np.cumsum(is_space)]
    v = _byte_table(seed)[pos & 63, b]
    v[spaces] = 0
    h = np.bitwise_xor.reduceat(v, starts)
    return mix64(h ^ ((ends - starts).astype(_U64) * _U64(_GOLDEN)))


def shingles(text: str, ngram: int = 5, seed: int = 1) -> np.ndarray:
    """Sorted unique 32-bit ids of the document's word n-grams (see the module doc for short documents).

    Ids are the high 32 bits of a 64-bit n-gram hash; two different n-grams of a pair of documents
    share an id with probability about n_a * n_b / 2**32 (1e-4 for two 1,000-word pages), which moves
    their Jaccard estimate by far less than its sampling error.
    """
    w = word_hashes(normalize(text), seed)
    n = w.size
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    if n < ngram:  # one shingle: the whole (short) word sequence, tagged by its length
        h = np.zeros(1, dtype=_U64) + _U64(n)
        for i in range(n):
            h = mix64(h * _U64(_GOLDEN) + w[i:i + 1])
        h = mix64(h ^ _U64(0xD6E8FEB86659FD93))
    else:
        m = n - ngram + 1
        h = np.zeros(m, dtype=_U64) + _U64(ngram)
        for i in range(ngram):
            h = mix64(h * _U64(_GOLDEN) + w[i:i + m])
    return np.unique((h >> _U64(32)).astype(np.uint32))


def shingle_set(text: str, ngram: int = 5) -> set[tuple[str, ...]]:
    """The exact word n-gram set (strings, no hashing), same short-document rule: for ground truth."""
    w = normalize(text).split()
    if not w:
        return set()
    if len(w) < ngram:
        return {tuple(w)}
    return {tuple(w[i:i + ngram]) for i in range(len(w) - ngram + 1)}


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    """Exact Jaccard similarity of two documents' n-gram sets (1.0 for two empty documents)."""
    sa, sb = shingle_set(a, ngram), shingle_set(b, ngram)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


# --------------------------------------------------------------------------- signatures and bands

class MinHasher:
    """Signatures and band keys for one ``MinHashParams``; build once per worker (``minhasher``).

    Why 32-bit: hash ``j`` maps a 32-bit shingle id ``x`` to ``(a_j * x + b_j) mod 2**32`` (``a_j``
    odd, so each is a permutation of the ids), and the signature is the minimum per ``j``. In
    uint32, numpy does the (shingles x hashes) multiply-add-min in three passes with twice the SIMD
    lanes of uint64 and half the memory traffic: 2.3-2.9x faster than the 64-bit multiply-add-shift
    family ``(a*x + b) >> 32`` when we compared both on 60 news pages at 9,000 hashes (300-390 vs
    131 pages/s on one core), which would leave little margin over the 10x-datatrove target.
    32 bits lose nothing LSH needs: a tie between two different shingles at a minimum has
    probability ~ n / 2**32 per hash, and the ids being hashed are already uniform (splitmix64
    outputs), so the linear family's weakness on structured keys (arithmetic progressions) does not
    arise; the tests check that the share of equal minima matches the exact Jaccard similarity
    within its sampling error.
    """

    def __init__(self, params: MinHashParams, block: int = 96) -> None:
        self.params = params
        h = params.num_hashes
        self.a = ((_stream(params.seed, 2, h) >> _U64(32)).astype(np.uint32) | np.uint32(1))
        self.b = (_stream(params.seed, 3, h) >> _U64(32)).astype(np.uint32)
        self.band_seeds = _stream(params.seed, 4, params.bands)
        self.band_seeds2 = _stream(params.seed, 5, params.bands) if params.key_bits == 128 else None
        self.block = block
        self._buf = np.empty((block, h), dtype=np.uint32)

    def signature(self, ids: np.ndarray) -> np.ndarray:
        """``num_hashes`` minima over the shingle ids (uint32); all 0xFFFFFFFF for no shingles."""
        sig = np.full(self.params.num_hashes, 0xFFFFFFFF, dtype=np.uint32)
        for s in range(0, ids.size, self.block):
            x = ids[s:s + self.block]
            buf = self._buf[:x.size]
            np.multiply(x[:, None], self.a, out=buf)
            np.add(buf, self.b, out=buf)
            np.minimum(sig, buf.min(axis=0), out=sig)
        return sig

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """(docs, num_hashes) signatures -> (docs, bands) int64 keys, the band index mixed in; 128-bit keys:
        (docs, bands, 2), [..., 0] the 64-bit key and [..., 1] a second chain's (other seeds, other multiplier)."""
        p = self.params
        m = sigs.reshape(sigs.shape[0], p.bands, p.rows)
        k = np.broadcast_to(self.band_seeds, m.shape[:2]).copy()
        k2 = None if self.band_seeds2 is None else np.broadcast_to(self.band_seeds2, m.shape[:2]).copy()
        for i in range(p.rows):  # one row of minima at a time: temporaries stay (docs x bands)
            row = m[:, :, i].astype(_U64)
            k = mix64((k * _U64(_GOLDEN)) ^ row)
            if k2 is not None:
                k2 = mix64((k2 * _U64(_GOLDEN2)) ^ row)
        if k2 is None:
            return k.view(np.int64)
        return np.stack([k, k2], axis=-1).view(np.int64)

    def doc_band_keys(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row index, band key) pairs for a batch of documents (128-bit keys: (keys, 2) int64); documents without
        shingles get none."""
        p = self.params
        idx, sigs = [], []
        for i, t in enumerate(texts):
            ids = shingles(t or "", p.ngram, p.seed)
            if ids.size:
                idx.append(i)
                sigs.append(self.signature(ids))
        shape = (-1,) if p.key_bits == 64 else (-1, 2)
        if not idx:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64).reshape(shape)
        keys = self.band_keys(np.stack(sigs))
        return np.repeat(np.asarray(idx, dtype=np.int64), p.bands), keys.reshape(shape)


@lru_cache(maxsize=4)
def minhasher(params: MinHashParams) -> MinHasher:
    """One MinHasher per parameters per process (Spark reuses Python workers across tasks)."""
    return MinHasher(params)


# --------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m udfs.minhash", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("scurve", help="print a configuration's S-curve and its 50%% point")
    sc.add_argument("--preset", default="refinedweb", choices=[*PRESETS, "custom"])
    sc.add_argument("--bands", type=int)
    sc.add_argument("--rows", type=int)
    sc.add_argument("--jaccard", type=float, nargs="+", help="similarities to print (default: 0.3 to 1.0)")
    args = ap.parse_args(argv)
    nh = args.bands * args.rows if args.bands and args.rows else None
    try:
        params = resolve_params(args.preset, nh, args.bands, args.rows)
    except ValueError as e:
        ap.error(str(e))
    print(format_scurve(params, args.preset, args.jaccard))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
