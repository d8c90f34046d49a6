"""Real text for the benchmarks, read from ../shared/data (news article bodies, WikiText-2, two Gutenberg books).

The files stay where they are; benchmarks only read them. ``paragraphs()`` gives the pool that
synthetic pages are drawn from, ``chunks()`` non-overlapping ~N-word base documents.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_WIKI_TITLE = re.compile(r"^ = [^=].* = $")


def _need(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path} is absent: the benchmarks need the shared real data beside the project (../shared/data)")
    return path


def _news() -> list[list[str]]:
    rows = [json.loads(line) for line in _need(SHARED / "groundtruth" / "news-articles-181.jsonl").open()]
    return [[p.strip() for p in r["article_body"].split("\n") if p.strip()] for r in rows]


def _wikitext() -> list[list[str]]:
    articles: list[list[str]] = []
    for line in _need(SHARED / "text" / "wikitext-2-valid.txt").read_text(encoding="utf-8").splitlines():
        if _WIKI_TITLE.match(line):
            articles.append([])
        elif line.strip() and not line.strip().startswith("=") and articles:
            articles[-1].append(line.strip())
    return articles


def _gutenberg(name: str) -> list[list[str]]:
    text = _need(SHARED / "text" / name).read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    start = text.index("\n", text.index("*** START OF")) + 1
    body = text[start:text.index("*** END OF")]
    return [[" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]]


@lru_cache(maxsize=1)
def sources() -> dict[str, list[list[str]]]:
    """Source name -> documents -> paragraphs."""
    return {"news": _news(), "wikitext": _wikitext(),
            "pride": _gutenberg("gutenberg-1342-pride-and-prejudice.txt"),
            "devil": _gutenberg("gutenberg-972-devils-dictionary.txt")}


def paragraphs(min_words: int = 8) -> list[str]:
    return [p for docs in sources().values() for d in docs for p in d if len(p.split()) >= min_words]


def chunks(words: int = 600, min_words: int = 150) -> list[str]:
    """Non-overlapping base documents of about ``words`` words (a news article is one, up to 2x ``words``)."""
    out: list[str] = []
    for name, docs in sources().items():
        for d in docs:
            if name == "news":
                text = "\n".join(d)
                if len(text.split()) >= min_words:
                    out.append(" ".join(text.split()[:2 * words]) if len(text.split()) > 2 * words else text)
                continue
            cur: list[str] = []
            n = 0
            for p in d:
                cur.append(p)
                n += len(p.split())
                if n >= words:
                    out.append("\n".join(cur))
                    cur, n = [], 0
            if n >= min_words:
                out.append("\n".join(cur))
    return out
