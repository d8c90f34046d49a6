"""What the language pre-screen costs and saves, on every HTML page of the shared WARCs and the bundled sample.

    python -m bench.prescreen [--languages en]

For each page: the exact check (trafilatura, then lid.176 on the extracted text, keep a configured language
at >= 0.65, as the extract job does) and the pre-screen (udfs.prescreen on the raw HTML). Prints how many
pages the exact check keeps, how many of those the pre-screen would drop (must stay under 0.5%), what share
of the pages the exact check drops the pre-screen skips, and the time per page of both, then the same for a
few neighbouring rules so the chosen one is seen in context.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.warcs import ROOT, html_pages, shared  # noqa: F401  (ROOT: run from anywhere)
from udfs.decode import decode_payload
from udfs.extract import ExtractSettings, extract_text
from udfs.langid import default_model_path, identify, language_verdict, load_model
from udfs.prescreen import PrescreenRule, prescreen

MAX_FALSE_DROP = 0.005


def pages() -> list[tuple[str, str, str]]:
    """(source, url, html) for every decodable HTML page of the shared WARCs and of a freshly generated sample."""
    from pipeline.sample.generate import write_sample_warc
    out = []
    folder = shared("warc")
    srcs = sorted(p for p in folder.glob("*.warc*") if ".wet" not in p.name)
    tmp = Path(tempfile.mkdtemp(prefix="mdr-prescreen-")) / "sample.warc.gz"
    write_sample_warc(str(tmp))
    for src in srcs + [tmp]:
        for url, payload, ctype in html_pages(src):
            try:
                html, _ = decode_payload(payload, ctype)
            except ValueError:
                continue
            out.append((src.name, url, html))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--languages", default="en", help="configured languages, comma-separated (default en)")
    args = ap.parse_args(argv)
    langs = tuple(args.languages.split(","))
    model = load_model(default_model_path())
    s = ExtractSettings()
    items = pages()
    print(f"{len(items)} HTML pages from {len({src for src, _, _ in items})} WARCs (shared data + bundled sample); "
          f"languages {','.join(langs)}")
    exact, t_extract = [], 0.0
    for _, url, html in items:
        t0 = time.perf_counter()
        try:
            text = extract_text(html, url, s)
        except Exception:  # counted like the job does: no text
            text = ""
        t_extract += time.perf_counter() - t0
        if not text.strip():
            exact.append(False)
            continue
        lang, score = identify(text, model)
        exact.append(language_verdict(lang, score, list(langs), 0.65).keep)
    kept = sum(exact)
    dropped = len(items) - kept
    print(f"exact check: keeps {kept}, drops {dropped} (no text or another language); "
          f"extraction {1e3 * t_extract / len(items):.2f} ms/page")
    rules = [PrescreenRule()] + [PrescreenRule(m, o, t) for m, o, t in
                                 ((200, 0.5, 0.05), (200, 0.9, 0.05), (200, 0.8, 0.2), (100, 0.8, 0.05), (500, 0.8, 0.05))]
    print(f"\n{'rule (min_chars, min_other, max_target)':42s} {'false drops':>14s} {'skipped':>16s} {'ms/page':>8s}")
    chosen_ok = False
    for i, rule in enumerate(rules):
        t0 = time.perf_counter()
        pre = [prescreen(html, model, langs, rule) is not None for _, _, html in items]
        ms = 1e3 * (time.perf_counter() - t0) / len(items)
        false = sum(p and e for p, e in zip(pre, exact))
        skipped = sum(p and not e for p, e in zip(pre, exact))
        share = false / kept if kept else 0.0
        name = f"({rule.min_chars}, {rule.min_other}, {rule.max_target})" + ("  <- default" if i == 0 else "")
        print(f"{name:42s} {false:4d} ({100 * share:5.2f}%) {skipped:5d} ({100 * skipped / max(1, dropped):5.1f}%) {ms:8.2f}")
        if i == 0:
            chosen_ok = share < MAX_FALSE_DROP
            for (src, url, _), p, e in zip(items, pre, exact):
                if p and e:
                    print(f"    false drop: {src} {url}")
    saved = "the extraction of the skipped pages"
    print(f"\ndefault rule: false drops {'under' if chosen_ok else 'NOT under'} {100 * MAX_FALSE_DROP:.1f}% of kept pages; "
          f"it saves {saved} at the pre-screen's cost on every page")
    return 0 if chosen_ok else 1


if __name__ == "__main__":
    sys.exit(main())
