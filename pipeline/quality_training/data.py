"""Training documents for the demo quality model, made from the real data in ../shared/data (never copied).

Positives (``hq``): WikiText-2 Wikipedia articles (detokenized, cut into ~150-600-word documents)
and the human-labelled news article bodies. Negatives (``cc``): the boilerplate of the same news
pages (all page text that is not the article), and the main text of random 2008 and 2024 crawl pages
(archive.org, dolma sample). cc-main-2020-34-excerpt.warc.gz is never used: the tests score it.
Each document has a ``group`` (the article title or page URL), so a page is either trained on or held out.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

WIKITEXT = ("text", "wikitext-2-valid.txt")
NEWS_TRUTH = ("groundtruth", "news-articles-181.jsonl")
NEWS_WARC = ("warc", "news-articles-181.warc.gz")
WEB_WARCS = (("warc", "archive-org-2008-mixed-mime.warc.gz"), ("warc", "dolma-sample-0000.warc.gz"),
             ("warc", "dolma-sample-0001.warc.gz"))
MIN_WORDS = 20

_TITLE = re.compile(r"^ = ([^=].*) = $")
_DETOK = [(re.compile(r" @(.)@ "), r"\1"), (re.compile(r" <unk>"), ""), (re.compile(r"<unk> ?"), ""),
          (re.compile(r" ([.,;:!?%)\]])"), r"\1"), (re.compile(r"([(\[$]) "), r"\1"),
          (re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"), (re.compile(r'" (.*?) "'), r'"\1"')]


def detokenize(line: str) -> str:
    """WikiText's tokenized form (`word , word @-@ word`) back to ordinary text."""
    out = line.strip()
    for pat, rep in _DETOK:
        out = pat.sub(rep, out)
    return re.sub(r"\s+", " ", out).strip()


def wikitext_articles(path: Path) -> list[tuple[str, list[str]]]:
    """(title, detokenized paragraphs) for every article of a WikiText file; headings are left out."""
    articles: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _TITLE.match(line)
        if m:
            articles.append((detokenize(m.group(1)), []))
        elif line.strip() and not line.strip().startswith("=") and articles:
            articles[-1][1].append(detokenize(line))
    return articles


def pack(paragraphs: list[str], min_words: int = 150, max_words: int = 600) -> list[str]:
    """Consecutive paragraphs joined into documents of about min..max words."""
    docs, cur, n = [], [], 0
    for p in paragraphs:
        w = len(p.split())
        if cur and n + w > max_words:
            docs.append("\n".join(cur))
            cur, n = [], 0
        cur.append(p)
        n += w
        if n >= min_words:
            docs.append("\n".join(cur))
            cur, n = [], 0
    if cur and (n >= MIN_WORDS or not docs):
        docs.append("\n".join(cur))
    return docs


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def boilerplate(page_text: str, article: str, min_line_chars: int = 2) -> str:
    """The lines of a page's full text that are not part of its article body."""
    body = _norm(article)
    lines = []
    for line in page_text.splitlines():
        n = _norm(line)
        if len(n) >= min_line_chars and n not in body:
            lines.append(line.strip())
    return "\n".join(lines)


class _ListSink:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def keep(self, row: dict) -> None:
        self.rows.append(row)

    def drop(self, *args, **kwargs) -> None:
        pass


def page_fragments(html: str) -> str:
    """Every visible text fragment of a page (text nodes outside script/style), one a line."""
    import lxml.html
    try:
        root = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return ""
    for bad in root.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    out = []
    for el in root.iter():
        for piece in (el.text if isinstance(el.tag, str) else None, el.tail):
            if piece and piece.strip():
                out.append(re.sub(r"\s+", " ", piece).strip())
    return "\n".join(out)


def warc_pages(path: Path, full_text: bool = False) -> list[dict]:
    """(url, text) of a WARC's HTML pages: trafilatura's main text, or every text fragment (full_text)."""
    from udfs.extract import ExtractSettings, process_warc
    sink = _ListSink()
    settings = ExtractSettings()
    if full_text:
        from warcio.archiveiterator import ArchiveIterator
        from udfs.decode import decode_payload
        out = []
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type != "response":
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI")
                ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else None
                html, _ = decode_payload(rec.content_stream().read(), ctype)
                out.append({"url": url, "text": page_fragments(html)})
        return out
    with path.open("rb") as f:
        process_warc(f, str(path), settings, sink)
    return [{"url": r["url"], "text": r["text"]} for r in sink.rows]


def _words(s: str) -> int:
    return len(s.split())


def build_sets(shared: Path) -> dict[str, list[dict]]:
    """name -> rows {id, url, group, text}: positives-wikitext, positives-news, negatives-boilerplate, negatives-web."""
    sets: dict[str, list[dict]] = {k: [] for k in ("positives-wikitext", "positives-news", "negatives-boilerplate",
                                                   "negatives-web")}
    for title, paras in wikitext_articles(shared.joinpath(*WIKITEXT)):
        for i, d in enumerate(pack(paras)):
            sets["positives-wikitext"].append({"id": f"wiki:{title}:{i}", "url": None, "group": f"wiki:{title}",
                                               "text": d})
    truth = {}
    for line in shared.joinpath(*NEWS_TRUTH).open(encoding="utf-8"):
        r = json.loads(line)
        truth[r["url"]] = r["article_body"]
        if _words(r["article_body"]) >= MIN_WORDS:
            sets["positives-news"].append({"id": f"news:{r['url']}", "url": r["url"], "group": r["url"],
                                           "text": r["article_body"]})
    for page in warc_pages(shared.joinpath(*NEWS_WARC), full_text=True):
        if page["url"] in truth:
            text = boilerplate(page["text"], truth[page["url"]])
            if _words(text) >= MIN_WORDS:
                sets["negatives-boilerplate"].append({"id": f"boiler:{page['url']}", "url": page["url"],
                                                      "group": page["url"], "text": text})
    seen = set()
    for parts in WEB_WARCS:
        for page in warc_pages(shared.joinpath(*parts)):
            key = _norm(page["text"])
            if _words(page["text"]) >= MIN_WORDS and key not in seen:
                seen.add(key)
                sets["negatives-web"].append({"id": f"web:{page['url']}", "url": page["url"], "group": page["url"],
                                              "text": page["text"]})
    return sets
