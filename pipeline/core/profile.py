"""Small, mergeable statistics of the rows each part file holds, so reports never read the data.

``PartWriter`` feeds every table it writes to a ``Profiler``; the part's profile travels with its
``PartInfo`` (task markers, Spark task results) and ``build_manifest`` merges them into the
manifest's ``profile``: ``{"kept": ..., "removed": ...}``. Everything is a count keyed by a string,
so profiles of any parts merge by addition, in any order, to the same result.

kept:    rows, chars, lengths {bin: n} (bin k holds 2**(k/2) <= chars < 2**((k+1)/2)),
         langs {lang: n} and lang_chars {lang: characters} (a ``lang`` column), scores {column: {bin: n}} (float columns named *score,
         SCORE_BINS bins over [0, 1], values outside clamped into the end bins).
removed: rows, reasons {reason: n}, domains {domain: {reason: n}} (top TOP_DOMAINS, approximate
         after truncation), langs {reason: {lang: n}} and scores {key: {reason: {bin: n}}} from the
         details JSON, and samples {reason: [a few rows]}, the same ones whatever the partitioning.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Iterable
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCORE_BINS = 20
TOP_DOMAINS = 100
SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 500


def length_bin(chars: int) -> int:
    return int(math.floor(2 * math.log2(max(chars, 1))))


def length_bin_edges(k: int) -> tuple[float, float]:
    return 2 ** (k / 2), 2 ** ((k + 1) / 2)


def score_bin(x: float) -> int:
    return min(SCORE_BINS - 1, max(0, int(math.floor(x * SCORE_BINS))))


def _count(values: Iterable, into: dict) -> None:
    for v in values:
        key = str(v)
        into[key] = into.get(key, 0) + 1


def _value_counts(arr: pa.ChunkedArray | pa.Array, into: dict) -> None:
    vc = pc.value_counts(arr.drop_null() if hasattr(arr, "drop_null") else arr)
    if isinstance(vc, pa.ChunkedArray):
        vc = vc.combine_chunks()
    for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
        into[str(v)] = into.get(str(v), 0) + n


def _domain(url: str | None) -> str | None:
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def _rank(doc_id: str, has_text: bool) -> str:
    """Samples prefer rows with text, then the smallest hash of the id: a choice independent of order."""
    return ("0" if has_text else "1") + hashlib.blake2b(str(doc_id).encode(), digest_size=8).hexdigest()


def is_rejects_schema(schema: pa.Schema) -> bool:
    return {"id", "url", "reason", "details", "text"} == set(schema.names)


class Profiler:
    """Accumulates one part's profile batch by batch; a failure stops profiling, never the write."""

    def __init__(self, rejects: bool) -> None:
        self.rejects = rejects
        self.p: dict | None = {"rows": 0}
        self.error: str | None = None

    def add(self, table: pa.Table) -> None:
        if self.p is None or not table.num_rows:
            return
        try:
            (self._add_rejects if self.rejects else self._add_kept)(table)
        except Exception as e:  # statistics are a by-product: the data must still be written
            self.p, self.error = None, f"{type(e).__name__}: {e}"

    def _add_kept(self, t: pa.Table) -> None:
        p = self.p
        p["rows"] += t.num_rows
        if "text" in t.column_names:
            lengths = pc.utf8_length(t.column("text")).to_numpy(zero_copy_only=False)
            lengths = np.nan_to_num(lengths.astype(np.float64), nan=0.0)
            p["chars"] = p.get("chars", 0) + int(lengths.sum())
            bins = np.floor(2 * np.log2(np.maximum(lengths, 1))).astype(np.int64)
            hist = p.setdefault("lengths", {})
            ks, ns = np.unique(bins, return_counts=True)
            for k, n in zip(ks.tolist(), ns.tolist()):
                hist[str(k)] = hist.get(str(k), 0) + n
        if "lang" in t.column_names:
            _value_counts(t.column("lang"), p.setdefault("langs", {}))
            if "text" in t.column_names:
                chars = p.setdefault("lang_chars", {})
                for lang, n in zip(t.column("lang").to_pylist(), lengths.tolist()):
                    key = "null" if lang is None else str(lang)
                    chars[key] = chars.get(key, 0) + int(n)
        for f in t.schema:
            if f.name.endswith("score") and pa.types.is_floating(f.type):
                vals = t.column(f.name).drop_null().to_numpy(zero_copy_only=False)
                vals = vals[~np.isnan(vals)]
                bins = np.clip(np.floor(vals * SCORE_BINS), 0, SCORE_BINS - 1).astype(np.int64)
                hist = p.setdefault("scores", {}).setdefault(f.name, {})
                ks, ns = np.unique(bins, return_counts=True)
                for k, n in zip(ks.tolist(), ns.tolist()):
                    hist[str(k)] = hist.get(str(k), 0) + n

    def _add_rejects(self, t: pa.Table) -> None:
        p = self.p
        p["rows"] += t.num_rows
        reasons = p.setdefault("reasons", {})
        domains = p.setdefault("domains", {})
        samples = p.setdefault("samples", {})
        d = t.select(["id", "url", "reason", "details", "text"]).to_pydict()
        for doc_id, url, reason, details, text in zip(d["id"], d["url"], d["reason"], d["details"], d["text"]):
            reasons[reason] = reasons.get(reason, 0) + 1
            dom = _domain(url)
            if dom:
                by_reason = domains.setdefault(dom, {})
                by_reason[reason] = by_reason.get(reason, 0) + 1
            info = json.loads(details) if details else {}
            if isinstance(info, dict):
                for key, v in info.items():
                    if key == "lang" and isinstance(v, str):
                        langs = p.setdefault("langs", {}).setdefault(reason, {})
                        langs[v] = langs.get(v, 0) + 1
                    elif key.endswith("score") and isinstance(v, (int, float)) and not isinstance(v, bool) \
                            and not math.isnan(v):
                        hist = p.setdefault("scores", {}).setdefault(key, {}).setdefault(reason, {})
                        b = str(score_bin(float(v)))
                        hist[b] = hist.get(b, 0) + 1
            rank = _rank(doc_id, text is not None)
            bucket = samples.setdefault(reason, [])
            if len(bucket) < SAMPLES_PER_REASON or rank < bucket[-1]["rank"]:
                bucket.append({"id": doc_id, "url": url, "details": info,
                               "text": text[:SAMPLE_CHARS] if text is not None else None, "rank": rank})
                bucket.sort(key=lambda s: s["rank"])
                del bucket[SAMPLES_PER_REASON:]
        if len(domains) > 4 * TOP_DOMAINS:
            p["domains"] = top_domains(domains, TOP_DOMAINS)

    def result(self) -> dict | None:
        if self.p is None:
            return None
        if "domains" in self.p:
            self.p["domains"] = top_domains(self.p["domains"], TOP_DOMAINS)
        return self.p


def top_domains(domains: dict, n: int) -> dict:
    ranked = sorted(domains.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return dict(ranked[:n])


def _merge_into(a: dict, b: dict) -> None:
    for k, v in b.items():
        if k == "samples":
            dst = a.setdefault("samples", {})
            for reason, rows in v.items():
                merged = {s["rank"]: s for s in dst.get(reason, []) + rows}
                dst[reason] = [merged[r] for r in sorted(merged)][:SAMPLES_PER_REASON]
        elif isinstance(v, dict):
            _merge_into(a.setdefault(k, {}), v)
        else:
            a[k] = a.get(k, 0) + v


def merge(profiles: Iterable[dict | None]) -> dict | None:
    """The profile of several parts; None when any of them has none (it would undercount)."""
    out: dict = {"rows": 0}
    for p in profiles:
        if p is None:
            return None
        _merge_into(out, p)
    if "domains" in out:
        out["domains"] = top_domains(out["domains"], TOP_DOMAINS)
    return out
