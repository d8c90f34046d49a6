"""Language pre-screen: a cheap look at a page's visible text before trafilatura runs on it.

Extraction costs ~12 ms a page; on a multilingual crawl most pages are not in the configured languages
and are dropped right after extraction by language ID. The pre-screen strips the page to its visible
text with a few regular expressions (no HTML parser: ~0.3 ms a page), runs the same fastText model on
it, and drops the page (reason ``lang_prescreen``) only when the model is confident that it is in
another language: the top language is not a configured one with probability >= ``min_other``, and
every configured language is below ``max_target``. Anything unsure (short or empty visible text, mixed
pages) goes on to extraction and the exact check. The rule's cost is measured by
``bench/prescreen.py``: the share of pages the exact check keeps that the pre-screen would drop.
"""
from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass

_HEAD_CHARS = 300_000   # a page's visible text is judged on its first 300k characters of HTML
_TEXT_CHARS = 3_000     # ... and at most 3,000 characters of that text go to the model
_OPEN = re.compile(r"<!--|<(script|style|noscript|template|svg|head)\b", re.I)
_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "noscript", "template", "svg", "head")}
_COMMENT_END = re.compile(r"-->")
_TITLE = re.compile(r"<title\b[^<>]{0,500}>([^<]{0,1000})</title\s*>", re.I)
_TAG = re.compile(r"<[^<>]*>")   # [^<>]: one scan per '<', so hostile markup stays linear
_SPACE = re.compile(r"\s+")


def _text_pieces(s: str, want: int):
    """Visible text of ``s`` piece by piece, left to right, until about ``want`` characters: comments and
    script/style/... elements are skipped whole (an unclosed one hides the rest, as in a browser), and the
    rest is cut at tag starts into 16 kB windows, so a large page costs only as much as its first text."""
    pos, got = 0, 0
    while got < want:
        m = _OPEN.search(s, pos)
        seg_end = m.start() if m else len(s)
        i = pos
        while i < seg_end and got < want:
            j = min(seg_end, i + 16_384)
            if j < seg_end:
                k = s.rfind("<", i, j)  # no tag (and no entity) straddles two windows
                j = k if k > i else j
            piece = _SPACE.sub(" ", htmllib.unescape(_TAG.sub(" ", s[i:j])))
            got += len(piece) - piece.count(" ")
            yield piece
            i = j
        if m is None:
            return
        end = (_COMMENT_END if m.group(1) is None else _CLOSE[m.group(1).lower()]).search(s, m.end())
        if end is None:
            return
        pos = end.end()
        yield " "


def visible_text(html: str, max_chars: int = _TEXT_CHARS) -> str:
    """Title plus the text outside tags, scripts, styles and comments, entities decoded, whitespace collapsed."""
    head = html[:_HEAD_CHARS]
    m = _TITLE.search(head)
    title = htmllib.unescape(m.group(1)) if m else ""
    body = "".join(_text_pieces(head, max_chars))
    return _SPACE.sub(" ", f"{title} {body}").strip()[:max_chars]


@dataclass(frozen=True)
class PrescreenRule:
    min_chars: int = 200      # less visible text than this: unsure, extract
    min_other: float = 0.80   # drop only when another language is this probable ...
    max_target: float = 0.05  # ... and every configured language is below this


def prescreen(html: str, model, languages: tuple[str, ...], rule: PrescreenRule = PrescreenRule()) -> dict | None:
    """None to go on to extraction, or the evidence for dropping the page: its top language and that language's
    probability (``lang``/``lang_score``, as language ID after extraction reports them) and the best configured
    language's probability."""
    if not languages:
        return None
    text = visible_text(html)
    if len(text) < rule.min_chars:
        return None
    labels, probs = model.predict(text, k=5)
    got = {lab.removeprefix("__label__"): float(p) for lab, p in zip(labels, probs)}
    top, top_p = next(iter(got.items()))
    target = max((got.get(lang, 0.0) for lang in languages), default=0.0)
    if top in languages or top_p < rule.min_other or target >= rule.max_target:
        return None
    return {"lang": top, "lang_score": round(top_p, 4), "target_score": round(target, 4), "on": "visible_text"}
