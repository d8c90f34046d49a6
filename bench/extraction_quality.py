"""Extraction quality: token precision / recall / F1 of extracted text against human-labelled main text.

    python bench/extraction_quality.py            # scores a grid of trafilatura settings

Ground truth: ../shared/data/groundtruth/news-articles-181.jsonl (article_body per URL); pages from
news-articles-181.warc.gz, decoded and extracted exactly as the extract stage does (udfs.extract).
Tokens are lowercased \\w+ words compared as multisets; we report the mean per page and the micro average.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import replace

from bench.warcs import html_pages, shared
from udfs.decode import decode_payload
from udfs.extract import ExtractSettings, extract_text

TOKEN = re.compile(r"\w+", re.U)

GRID = {
    "trafilatura defaults": ExtractSettings(fallback=True, favor_recall=False),
    "fast (no fallback)": ExtractSettings(fallback=False, favor_recall=False),
    "favor_precision": ExtractSettings(fallback=True, favor_recall=False, favor_precision=True),
    "favor_recall": ExtractSettings(fallback=True, favor_recall=True),
    "fast + favor_precision": ExtractSettings(fallback=False, favor_recall=False, favor_precision=True),
    "fast + favor_recall": ExtractSettings(fallback=False, favor_recall=True),
    "fast + favor_recall, no tables": ExtractSettings(fallback=False, favor_recall=True, include_tables=False),
    "fast + favor_recall, comments": ExtractSettings(fallback=False, favor_recall=True, include_comments=True),
}


def prf(pred: str, gold: str) -> tuple[float, float, float, int, int, int]:
    p, g = Counter(TOKEN.findall(pred.lower())), Counter(TOKEN.findall(gold.lower()))
    overlap = sum((p & g).values())
    np_, ng = sum(p.values()), sum(g.values())
    prec = overlap / np_ if np_ else 0.0
    rec = overlap / ng if ng else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1, overlap, np_, ng


def score(settings: ExtractSettings, pages, gold: dict[str, str]) -> dict:
    rows, tot, t0 = [], [0, 0, 0], time.perf_counter()
    for url, payload, ctype in pages:
        if url not in gold:
            continue
        html, _ = decode_payload(payload, ctype)
        p, r, f, ov, n_p, n_g = prf(extract_text(html, url, settings), gold[url])
        rows.append((p, r, f))
        tot[0] += ov
        tot[1] += n_p
        tot[2] += n_g
    secs = time.perf_counter() - t0
    n = len(rows)
    micro_p, micro_r = tot[0] / tot[1], tot[0] / tot[2]
    return {"pages": n, "precision": sum(r[0] for r in rows) / n, "recall": sum(r[1] for r in rows) / n,
            "f1": sum(r[2] for r in rows) / n, "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r),
            "pages_per_s": n / secs}


def main() -> None:
    gold = {}
    for line in shared("groundtruth", "news-articles-181.jsonl").read_text().splitlines():
        d = json.loads(line)
        gold[d["url"]] = d["article_body"]
    pages = html_pages(shared("warc", "news-articles-181.warc.gz"))
    print(f"{len(pages)} pages, {len(gold)} labelled; trafilatura settings scored against the ground truth\n")
    print(f"{'settings':24} {'precision':>9} {'recall':>7} {'F1':>6} {'micro F1':>9} {'pages/s':>8}")
    results = {}
    for name, s in GRID.items():
        r = results[name] = score(s, pages, gold)
        print(f"{name:24} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} {r['micro_f1']:9.3f} "
              f"{r['pages_per_s']:8.1f}", flush=True)
    best = max(results, key=lambda k: results[k]["f1"])
    print(f"\nbest mean F1: {best} ({results[best]['f1']:.3f}); the extract stage's defaults: "
          f"{[k for k, v in GRID.items() if v == ExtractSettings()][0]}")


if __name__ == "__main__":
    main()
