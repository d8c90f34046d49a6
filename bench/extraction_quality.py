"""Extraction quality on two labelled sets: token precision / recall / F1 of extracted text against human-labelled main text.

    python -m bench.extraction_quality             # every candidate on both sets, side by side, with pages/s
    python -m bench.extraction_quality --only new  # candidates whose name contains "new"

Sets (../shared/data):
- news: groundtruth/news-articles-181.jsonl (article_body per URL) for the pages of warc/news-articles-181.warc.gz
  (181 news/article pages, no language declared);
- readability: extraction/readability-test-pages/<page>/{source.html, expected.html, expected-metadata.json}
  (130 pages: blogs, docs, Wikipedia, edge cases; expected.html's text is the gold, its metadata's lang the language).
Pages are decoded and extracted exactly as the extract stage does (udfs.extract.extract_text). Tokens are lowercased
\\w+ words compared as multisets; we report the mean per page, the micro average, and "lost": pages with gold text
that get no text. The default is chosen by the worse set's F1 (not the better), among candidates that lose no page.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import replace

from bench.warcs import html_pages, shared
from udfs.decode import decode_payload
from udfs.extract import ExtractSettings, extract_text
from udfs.main_text import combine

TOKEN = re.compile(r"\w+", re.U)
_T = ExtractSettings(extractor="trafilatura", boilerplate_lines=False)  # trafilatura alone, fast + favor_recall

GRID = {
    "trafilatura defaults (fallback on)": replace(_T, fallback=True, favor_recall=False),
    "fast": replace(_T, favor_recall=False),
    "fast + favor_precision": replace(_T, favor_recall=False, favor_precision=True),
    "fast + favor_recall (old default)": _T,
    "resiliparse": replace(_T, extractor="resiliparse"),
    "resiliparse + lines": replace(_T, extractor="resiliparse", boilerplate_lines=True),
    "fast + favor_recall + lines": replace(_T, boilerplate_lines=True),
    "fast + favor_recall + 2nd opinion <1200 x1": replace(_T, extractor="trafilatura+resiliparse",
                                                          second_opinion_below_chars=1200, second_opinion_factor=1.0),
    "fast + favor_recall + 2nd opinion <1200 x1.5": replace(_T, extractor="trafilatura+resiliparse",
                                                            second_opinion_below_chars=1200),
    "fast + favor_recall + 2nd opinion <800 x1": replace(_T, extractor="trafilatura+resiliparse",
                                                         second_opinion_factor=1.0),
    "fast + favor_recall + 2nd opinion <800 x2": replace(_T, extractor="trafilatura+resiliparse",
                                                         second_opinion_factor=2.0),
    "fast + favor_recall + 2nd opinion <800 x1.5": replace(_T, extractor="trafilatura+resiliparse"),
    "fast + favor_recall + 2nd opinion <800 x1.5 + lines": ExtractSettings(),
}


def prf(pred: str, gold: str) -> tuple[float, float, float, int, int, int]:
    p, g = Counter(TOKEN.findall(pred.lower())), Counter(TOKEN.findall(gold.lower()))
    overlap = sum((p & g).values())
    np_, ng = sum(p.values()), sum(g.values())
    prec = overlap / np_ if np_ else 0.0
    rec = overlap / ng if ng else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1, overlap, np_, ng


def news_set() -> list[tuple[str, str, str, str]]:
    """(url, html, gold text, language) of the labelled news pages."""
    gold = {}
    for line in shared("groundtruth", "news-articles-181.jsonl").read_text().splitlines():
        d = json.loads(line)
        gold[d["url"]] = d["article_body"]
    return [(url, decode_payload(payload, ctype)[0], gold[url], "undeclared")
            for url, payload, ctype in html_pages(shared("warc", "news-articles-181.warc.gz")) if url in gold]


def _html_text(html: str) -> str:
    import lxml.html
    root = lxml.html.fromstring(html)
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    return " ".join(root.itertext())


def readability_set() -> list[tuple[str, str, str, str]]:
    """(url, html, gold text, language) of the readability test pages (language: primary subtag, or undeclared)."""
    out = []
    for d in sorted(p for p in shared("extraction", "readability-test-pages").iterdir() if p.is_dir()):
        meta = json.loads((d / "expected-metadata.json").read_text())
        lang = (meta.get("lang") or "undeclared").split("-")[0].lower()
        html, _ = decode_payload((d / "source.html").read_bytes(), "text/html")
        out.append((f"http://fakehost/{d.name}/", html, _html_text((d / "expected.html").read_text()), lang))
    return out


class Pieces:
    """Each engine's text and CPU seconds per page, computed once per distinct engine setting and reused by
    every candidate that combines them (udfs.main_text.combine); CPU time, not wall time: the machine is shared."""

    def __init__(self, pages) -> None:
        self.pages = pages
        self.cache: dict[tuple, list[tuple[str, float]]] = {}

    def get(self, key: tuple, fn) -> list[tuple[str, float]]:
        if key not in self.cache:
            out = []
            for url, html, _, _ in self.pages:
                t0 = time.process_time()
                text = fn(url, html)
                out.append((text, time.process_time() - t0))
            self.cache[key] = out
        return self.cache[key]

    def texts(self, s: ExtractSettings) -> tuple[list[str], float]:
        """(text per page, CPU seconds in all) of candidate ``s``, exactly as udfs.main_text.main_text makes them."""
        lim = replace(s, timeout_s=3600.0)  # no per-page limit here: a loaded machine would time pages out
        tkey = ("trafilatura", s.fallback, s.favor_precision, s.favor_recall, s.include_tables, s.include_comments,
                s.deduplicate)
        first = self.get(tkey, lambda url, html: extract_text(html, url, replace(lim, extractor="trafilatura",
                                                                                  boilerplate_lines=False)))
        second = self.get(("resiliparse",), lambda url, html: extract_text(html, url, replace(
            lim, extractor="resiliparse", boilerplate_lines=False)))
        texts, cpu = [], 0.0
        for i in range(len(self.pages)):
            used = []

            def one(piece, i=i, used=used):
                used.append(piece[i][1])
                return piece[i][0]
            t0 = time.process_time()
            texts.append(combine(s, lambda: one(first), lambda: one(second)))
            cpu += time.process_time() - t0 + sum(used)
        return texts, cpu


def score(settings: ExtractSettings, pieces: Pieces) -> dict:
    rows, tot, lost, by_lang = [], [0, 0, 0], 0, defaultdict(list)
    texts, secs = pieces.texts(settings)
    for (url, _, gold, lang), text in zip(pieces.pages, texts):
        p, r, f, ov, n_p, n_g = prf(text, gold)
        lost += n_g > 0 and not text.strip()
        rows.append((p, r, f))
        by_lang[lang].append(f)
        tot[0] += ov
        tot[1] += n_p
        tot[2] += n_g
    n = len(rows)
    micro_p, micro_r = tot[0] / tot[1], tot[0] / tot[2]
    return {"pages": n, "precision": sum(r[0] for r in rows) / n, "recall": sum(r[1] for r in rows) / n,
            "f1": sum(r[2] for r in rows) / n, "micro_f1": 2 * micro_p * micro_r / (micro_p + micro_r),
            "lost": lost, "seconds": secs, "texts": texts,
            "by_lang": {k: (len(v), sum(v) / len(v)) for k, v in sorted(by_lang.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="score only the candidates whose name contains this")
    args = ap.parse_args()
    sets = {"news": Pieces(news_set()), "readability": Pieces(readability_set())}
    print(", ".join(f"{k}: {len(v.pages)} labelled pages" for k, v in sets.items()) +
          "; pages per CPU second of this process (the machine is shared and busy: compare within this run)\n")
    head = f"{'candidate':52}" + "".join(f" | {k[:11]:>11} P     R    F1  lost" for k in sets) + " | worse F1  pages/CPU-s"
    print(head)
    results = {}
    for name, s in GRID.items():
        if args.only not in name:
            continue
        r = results[name] = {k: score(s, pieces) for k, pieces in sets.items()}
        secs = sum(x["seconds"] for x in r.values())
        line = f"{name:52}" + "".join(f" | {x['precision']:11.3f} {x['recall']:.3f} {x['f1']:.3f} {x['lost']:4d}"
                                      for x in r.values())
        print(f"{line} | {min(x['f1'] for x in r.values()):8.3f} {sum(x['pages'] for x in r.values()) / secs:8.1f}",
              flush=True)
    print("\nper declared language (readability set; news declares none): pages, mean F1")
    for name, r in results.items():
        langs = r["readability"]["by_lang"]
        print(f"  {name:52} " + "  ".join(f"{k} {n} {f:.3f}" for k, (n, f) in langs.items()))
    eligible = [k for k in results if all(x["lost"] == 0 for x in results[k].values())] or list(results)
    best = max(eligible, key=lambda k: min(x["f1"] for x in results[k].values()))
    default = [k for k, v in GRID.items() if v == ExtractSettings()]
    if default[0] in results:  # the default, end to end through extract_text, gives the texts scored above
        for k, pieces in sets.items():
            direct = [extract_text(html, url, replace(ExtractSettings(), timeout_s=3600.0))
                      for url, html, _, _ in pieces.pages]
            assert direct == results[default[0]][k]["texts"], f"{k}: combined texts differ from extract_text's"
    base = results.get("fast + favor_recall (old default)")
    if base and default[0] in results:
        def per_page(r):
            return sum(x["seconds"] for x in r.values()) / sum(x["pages"] for x in r.values())
        print(f"CPU time per page, default vs old default: {1000 * per_page(results[default[0]]):.1f} ms vs "
              f"{1000 * per_page(base):.1f} ms ({100 * (per_page(results[default[0]]) / per_page(base) - 1):+.1f}%)")
    print(f"\nbest worse-set F1 with no page lost: {best} "
          f"({min(x['f1'] for x in results[best].values()):.3f}); the extract stage's default: {default[0]}")


if __name__ == "__main__":
    main()
