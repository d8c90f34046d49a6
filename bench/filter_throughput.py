"""Filter throughput: our repetition + quality + line stages vs datatrove's Gopher filters, same documents, one run.

    python -m bench.filter_throughput --rounds 3

Documents: every page trafilatura extracts from the HTTP-200 HTML responses of ../shared/data/warc/
(~360 pages, 2.2 M characters). Ours: ``pipeline.stages.filter.filter_document`` with the default
(RefinedWeb) FilterConfig: word split, Gopher repetition, Gopher quality, RefinedWeb line corrections.
Reference: datatrove 0.10.1's GopherRepetitionFilter then GopherQualityFilter (spaCy English words),
a document reaching the quality filter only when it passes repetition, as in a datatrove pipeline.
Both run in this one process on one core, rounds interleaved; our per-process word cache is cleared
before each of our rounds, so no document is ever split from the cache of its own earlier round.
Figures are CPU seconds (process time), so docs/s is per core. Target: ours >= 1.5x datatrove.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.warcs import html_pages, shared

TARGET = 1.5


def load_documents() -> list[str]:
    import trafilatura

    texts = []
    for path in sorted(shared("warc").glob("*.warc*")):
        try:
            pages = html_pages(path)
        except Exception as e:  # the truncated fixture still gives what was read before the damage
            print(f"  note: {path.name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        for _, body, _ in pages:
            try:
                text = trafilatura.extract(body)
            except Exception:
                continue
            if text:
                texts.append(text)
    return texts


def run_ours(texts: list[str]) -> tuple[float, int]:
    from pipeline.core.config import FilterConfig
    from pipeline.stages.filter import filter_document
    from udfs import words

    cfg = FilterConfig()
    words._CACHE.clear()
    t0 = time.process_time()
    kept = sum(filter_document(t, cfg)[1] is None for t in texts)
    return time.process_time() - t0, kept


def run_datatrove(texts: list[str]) -> tuple[float, int]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

    rep, qual = GopherRepetitionFilter(), GopherQualityFilter()
    t0 = time.process_time()
    kept = 0
    for i, t in enumerate(texts):
        doc = Document(text=t, id=str(i))
        kept += rep.filter(doc) is True and qual.filter(doc) is True
    return time.process_time() - t0, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per side, interleaved")
    args = ap.parse_args()
    try:
        import datatrove  # noqa: F401
    except ImportError:
        sys.exit("datatrove is not installed: pip install -e '.[test]' (the reference needs datatrove and spacy)")

    texts = load_documents()
    chars = sum(map(len, texts))
    print(f"documents: {len(texts)} pages from shared/data/warc ({chars / 1e6:.2f} M characters)")
    run_datatrove(texts[:5])                  # load spaCy before timing
    ours_s, theirs_s = [], []
    for r in range(args.rounds):
        t, kept_theirs = run_datatrove(texts)
        theirs_s.append(t)
        t, kept_ours = run_ours(texts)
        ours_s.append(t)
        print(f"round {r + 1}: datatrove {len(texts) / theirs_s[-1]:8.1f} docs/s   ours {len(texts) / ours_s[-1]:8.1f} docs/s")
    ours, theirs = min(ours_s), min(theirs_s)
    ratio = theirs / ours
    print(f"datatrove GopherRepetition+GopherQuality : {len(texts) / theirs:8.1f} docs/s per core "
          f"({theirs:.2f} CPU s, kept {kept_theirs})")
    print(f"ours repetition+quality+line corrections : {len(texts) / ours:8.1f} docs/s per core "
          f"({ours:.2f} CPU s, kept {kept_ours} after line corrections)")
    print(f"ratio ours/datatrove: {ratio:.2f}x (target >= {TARGET}x): {'PASS' if ratio >= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
