"""A small synthetic Common Crawl-style WARC for local runs, demos and tests.

``write_sample_warc(path, seed)`` writes ~150 captures laid out like a Common Crawl WARC (warcinfo,
then request/response/metadata per fetch) whose pages exercise every stage: clean articles in seven
languages and several legacy charsets, exact and near duplicates, recrawls, spam, low-quality and
short pages, and records the extractor must skip. All prose is generated from the word banks in
``pipeline.sample.text``. The same seed gives byte-identical output: dates are fixed, record ids are
derived from the seed, and each gzip member has mtime 0.

    python -m pipeline.sample.generate OUT.warc.gz [--seed N] [--json]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import random
import struct
import sys
import unicodedata
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from pipeline.sample import text as T

CRAWL_START = datetime(2024, 3, 18, 9, 0, 0, tzinfo=timezone.utc)
RECRAWL_AFTER = timedelta(days=3)  # the second fetch of recrawled URLs happens this much later
N_EN_ARTICLES = 64
# Pages per language: (python codec, declared label, where declared: both|header|meta|none)
LANG_PAGES: dict[str, list[tuple[str, str, str]]] = {
    "de": [("utf-8", "UTF-8", "both"), ("utf-8", "utf-8", "meta"), ("windows-1252", "windows-1252", "both"),
           ("utf-8", "UTF-8", "header"), ("utf-8", "UTF-8", "both"), ("utf-8", "UTF-8", "both")],
    "fr": [("windows-1252", "windows-1252", "header"), ("utf-8", "UTF-8", "both"), ("utf-8", "UTF-8", "both"),
           ("windows-1252", "Windows-1252", "meta"), ("utf-8", "utf-8", "meta"), ("utf-8", "UTF-8", "both")],
    "es": [("iso-8859-1", "ISO-8859-1", "both"), ("utf-8", "UTF-8", "both"), ("utf-8", "UTF-8", "header"),
           ("utf-8", "UTF-8", "both"), ("iso-8859-1", "iso-8859-1", "meta"), ("utf-8", "UTF-8", "both")],
    "ja": [("euc_jp", "EUC-JP", "both"), ("shift_jis", "Shift_JIS", "both"), ("utf-8", "UTF-8", "both"),
           ("utf-8", "UTF-8", "meta"), ("shift_jis", "Shift_JIS", "meta")],
    "zh": [("gbk", "GBK", "both"), ("utf-8", "UTF-8", "both"), ("utf-8", "UTF-8", "both"), ("utf-8", "utf-8", "meta")],
    "ru": [("windows-1251", "windows-1251", "both"), ("koi8-r", "KOI8-R", "both"), ("utf-8", "UTF-8", "both"),
           ("utf-8", "UTF-8", "header")],
}

EN_SITES = [  # (domain, name, theme, topic or None for a general news site)
    ("greenfingers-diary.example", "Greenfingers Diary", "blog", "gardening"),
    ("wheelhouse-cycling.example", "The Wheelhouse", "blog", "cycling"),
    ("crumb-and-crust.example", "Crumb & Crust", "blog", "baking"),
    ("darkskynotes.example", "Dark Sky Notes", "blog", "astronomy"),
    ("feathered-log.example", "The Feathered Log", "blog", "birdwatching"),
    ("shavings-and-shellac.example", "Shavings and Shellac", "forum", "woodworking"),
    ("oldtown-records.example", "Old Town Records", "blog", "local history"),
    ("pennywise-household.example", "Pennywise Household", "blog", "household money"),
    ("commitlog-journal.example", "Commit Log", "forum", "programming"),
    ("ridgeline-walks.example", "Ridgeline Walks", "blog", "hiking"),
    ("silverhalide-blog.example", "Silver Halide", "blog", "photography"),
    ("planted-tank-notes.example", "Planted Tank Notes", "forum", "aquariums"),
    ("endgame-corner.example", "Endgame Corner", "blog", "chess"),
    ("longrun-club.example", "Long Run Club", "blog", "running"),
    ("polyglot-evenings.example", "Polyglot Evenings", "blog", "language learning"),
    ("riverside-gazette.example", "The Riverside Gazette", "news", None),
    ("northvale-times.example", "Northvale Times", "news", None),
    ("harbourtown-herald.example", "Harbourtown Herald", "news", None),
]
LANG_SITES = {
    "de": [("gartenfreunde-blog.example", "Gartenfreunde Blog", "blog"), ("heimat-nachrichten.example", "Heimat Nachrichten", "news")],
    "fr": [("le-potager-de-lea.example", "Le potager de Léa", "blog"), ("nouvelles-du-quartier.example", "Nouvelles du quartier", "news")],
    "es": [("el-huerto-de-carmen.example", "El huerto de Carmen", "blog"), ("noticias-del-barrio.example", "Noticias del barrio", "news")],
    "ja": [("satoyama-nikki.example", "里山日記", "blog"), ("machi-no-tayori.example", "まちのたより", "news")],
    "zh": [("xiaozhen-shenghuo.example", "小镇生活", "blog"), ("shequ-dongtai.example", "社区动态", "news")],
    "ru": [("gorodskie-zametki.example", "Городские заметки", "blog"), ("nash-rayon.example", "Наш район", "news")],
}
NEWS_SECTIONS = ["lifestyle", "local", "science", "money", "tech", "sport", "culture", "outdoors"]
SERVERS = ["nginx/1.24.0", "Apache/2.4.58 (Debian)", "cloudflare", "LiteSpeed", "nginx", "Microsoft-IIS/10.0"]
EN_AUTHORS = ["Helen Marsh", "David Okafor", "Ruth Kowalski", "Ben Ashworth", "Nadia Farouk", "Chris Delaney",
              "Maggie Thorne", "Owen Price"]
SYNONYMS = {"small": "little", "quickly": "rapidly", "obvious": "clear", "friendly": "welcoming", "easy": "simple",
            "useful": "helpful", "expensive": "pricey", "early": "late", "first": "initial", "real": "genuine",
            "simple": "basic", "quiet": "calm", "lovely": "wonderful", "honest": "frank", "different": "distinct",
            "problem": "issue", "faster": "quicker", "helpful": "useful", "good": "fine", "best": "finest"}
LANG_NAMES = {"en": "ENGLISH", "de": "GERMAN", "fr": "FRENCH", "es": "SPANISH", "ja": "Japanese",
              "zh": "Chinese", "ru": "RUSSIAN"}
ISO3 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "ja": "jpn", "zh": "zho", "ru": "rus"}


@dataclass
class Capture:
    """One fetch as it lands in the WARC; ``kind`` says which pipeline behaviour it exercises."""
    url: str
    kind: str
    lang: str | None
    body: bytes                          # HTTP entity exactly as stored (after any transfer/content coding)
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)  # HTTP headers; Date/Content-Length added on write
    mime: str = "text/html"              # WARC-Identified-Payload-Type
    charset: str | None = "utf-8"        # Python codec of the text, None for binary payloads
    declared: str = "both"               # where the charset is declared: both | header | meta | none
    group: str | None = None             # shared by the captures of one duplicate/recrawl set
    later: bool = False                  # fetched in the recrawl pass, after every first fetch
    changed_words: int = 0               # near duplicates: words changed against the original
    refers_to: Capture | None = None     # revisit: the capture whose payload it repeats
    date: str = ""                       # WARC-Date, set when written
    record_id: str = ""                  # response/revisit WARC-Record-ID, set when written
    payload_digest: str = ""


@dataclass
class Article:
    lang: str
    site: tuple
    title: str
    blocks: list[tuple[str, object]]     # ("p"|"h2", str) or ("ul", [str])
    author: str
    published: datetime
    url: str
    topic: str | None = None


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _gzip_member(data: bytes) -> bytes:
    """A gzip member with a fixed header (mtime 0, OS unknown), so output is the same on every platform."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = c.compress(data) + c.flush()
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    out = "".join(c if c.isalnum() else "-" for c in ascii_text)
    return "-".join(p for p in out.split("-") if p)[:60].strip("-") or "post"


def _http_date(dt: datetime) -> str:
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _warc_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- binary payloads

def _png(width: int = 16, height: int = 16) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 16 % 256, y * 16 % 256, 128)) for x in range(width))
                    for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF 1.4 with a correct xref table."""
    text = "BT /F1 11 Tf 72 760 Td 14 TL " + " ".join(
        "(" + ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for ln in lines) + " ET"
    stream = text.encode("latin-1")
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(body):
        n = rng.randint(200, 1500)
        piece = body[pos:pos + n]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        pos += n
    return bytes(out + b"0\r\n\r\n")


# --------------------------------------------------------------------------- text

class _Writer:
    """All randomness of one sample flows through ``self.rng``; nothing iterates over sets or hashes."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.urls: set[str] = set()
        self.n_ids = 0

    # ---------------------------------------------------------------- ids
    def record_id(self) -> str:
        self.n_ids += 1
        digest = hashlib.sha256(f"mdr-sample:{self.seed}:{self.n_ids}".encode()).digest()
        return f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>"

    def unique(self, url: str) -> str:
        base, n = url, 2
        while url in self.urls:
            url = base.rstrip("/") + f"-{n}" + ("/" if base.endswith("/") else "")
            n += 1
        self.urls.add(url)
        return url

    # ---------------------------------------------------------------- sentences
    def en_values(self, topic: str) -> dict[str, str]:
        r, bank = self.rng, T.EN_TOPICS[topic]
        thing, thing2 = r.sample(bank["thing"], 2)
        things, things2 = r.sample(bank["things"], 2)
        activity, activity2 = r.sample(bank["activity"], 2)
        v = dict(thing=thing, thing2=thing2, things=things, things2=things2, activity=activity,
                 activity2=activity2, place=r.choice(bank["place"]), person=r.choice(T.EN_PEOPLE),
                 season=r.choice(T.EN_SEASONS), result=r.choice(T.EN_RESULTS), num=str(r.randint(2, 12)),
                 pct=str(r.randint(5, 40)), year=str(r.randint(1968, 2022)))
        v.update({_cap(k): _cap(x) for k, x in list(v.items())})
        return v

    def lang_values(self, lang: str) -> dict[str, str]:
        r, bank = self.rng, T.LANGS[lang]
        thing, thing2 = r.sample(bank["things"], 2)
        person = r.choice(bank["people"])
        lo, hi = bank["num_range"]
        v = dict(thing=thing, thing2=thing2, place=r.choice(bank["places"]), person=person,
                 person_lc=person[:1].lower() + person[1:], num=str(r.randint(lo, hi)), year=str(r.randint(1985, 2021)))
        v.update({_cap(k): _cap(x) for k, x in list(v.items())})
        return v

    def fill(self, template: str, lang: str, topic: str | None) -> str:
        vals = self.en_values(topic) if lang == "en" else self.lang_values(lang)
        return _cap(template.format(**vals))

    def paragraphs(self, sentences: list[str], lang: str) -> list[str]:
        sep = "" if lang in ("ja", "zh") else " "
        out, i = [], 0
        while i < len(sentences):
            n = self.rng.randint(2, 4)
            out.append(sep.join(sentences[i:i + n]))
            i += n
        return out

    def article_blocks(self, lang: str, topic: str | None) -> tuple[str, list]:
        r = self.rng
        if lang == "en":
            templates, headings = T.EN_SENTENCES, T.EN_HEADINGS
            title = self.fill(r.choice(T.EN_TITLES), lang, topic)
            n = r.randint(15, 22)
        else:
            bank = T.LANGS[lang]
            templates, headings = bank["sentences"], bank["headings"]
            title = self.fill(r.choice(bank["titles"]), lang, None)
            n = r.randint(9, 13) if lang in ("ja", "zh") else r.randint(12, 17)  # keeps same-language pages apart
        sentences = [self.fill(t, lang, topic) for t in r.sample(templates, n)]
        paras = self.paragraphs(sentences, lang)
        n_sections = min(len(headings), max(2, len(paras) // 2))
        heads = r.sample(headings, n_sections)
        blocks: list[tuple[str, object]] = [("p", paras[0])]
        per = max(1, (len(paras) - 1) // n_sections)
        rest = paras[1:]
        for k, h in enumerate(heads):
            chunk = rest[k * per:(k + 1) * per] if k < n_sections - 1 else rest[k * per:]
            if not chunk:
                continue
            blocks.append(("h2", h))
            blocks.extend(("p", p) for p in chunk)
        if lang == "en" and r.random() < 0.5:
            tips = [self.fill(t, lang, topic) for t in r.sample(T.EN_TIPS, r.randint(3, 5))]
            blocks.insert(len(blocks) - 1, ("ul", tips))
        return title, blocks

    # ---------------------------------------------------------------- articles
    def new_article(self, lang: str, site: tuple, topic: str | None = None) -> Article:
        r = self.rng
        if lang == "en":
            topic = topic or site[3] or r.choice(list(T.EN_TOPICS))
        title, blocks = self.article_blocks(lang, topic)
        published = CRAWL_START - timedelta(days=r.randint(1, 900), minutes=r.randint(0, 1439))
        domain, theme, pid = site[0], site[2], r.randint(10000, 99999)
        if lang in ("ja", "zh"):
            url = (f"https://www.{domain}/news/{published:%Y%m%d}/{pid}.html" if theme == "news"
                   else f"https://{domain}/archives/{pid}")
        elif lang == "ru":
            slug = "-".join("".join(c for c in w if c.isalnum()) for w in title.lower().split())
            url = (f"https://www.{domain}/news/{pid}/" if theme == "news"
                   else f"https://{domain}/{quote(slug.strip('-'))}/")
        elif theme == "news":
            url = f"https://www.{domain}/{r.choice(NEWS_SECTIONS)}/{_slug(title)}-{pid}.html"
        elif theme == "forum":
            url = f"https://forum.{domain}/threads/{_slug(title)}.{pid}/"
        else:
            url = f"https://{domain}/{published:%Y/%m}/{_slug(title)}/"
        author = r.choice(EN_AUTHORS if lang == "en" else T.CHROME[lang]["names"])
        return Article(lang, site, title, blocks, author, published, self.unique(url), topic)

    def other_titles(self, lang: str, topic: str | None, n: int) -> list[str]:
        if lang == "en":
            return [self.fill(self.rng.choice(T.EN_TITLES), "en", topic or self.rng.choice(list(T.EN_TOPICS)))
                    for _ in range(n)]
        return [self.fill(self.rng.choice(T.LANGS[lang]["titles"]), lang, None) for _ in range(n)]

    # ---------------------------------------------------------------- rendering
    def render(self, a: Article, meta_charset: str | None, canonical: str | None = None) -> str:
        r, c, e = self.rng, T.CHROME[a.lang], html.escape
        domain, name, theme = a.site[0], a.site[1], a.site[2]
        date_iso = a.published.strftime("%Y-%m-%d")
        date_txt = a.published.strftime("%B %d, %Y").replace(" 0", " ") if a.lang == "en" else date_iso
        body = []
        for kind, content in a.blocks:
            if kind == "ul":
                body.append("<ul>\n" + "\n".join(f"  <li>{e(x)}</li>" for x in content) + "\n</ul>")
            else:
                body.append(f"<{kind}>{e(content)}</{kind}>")
        first = next(str(x) for k, x in a.blocks if k == "p")
        description = first.split(". ")[0][:150]
        if meta_charset is None:
            charset_tag = ""
        elif r.random() < 0.5 and meta_charset.lower() != "utf-8":
            charset_tag = f'<meta http-equiv="Content-Type" content="text/html; charset={meta_charset}">\n'
        else:
            charset_tag = f'<meta charset="{meta_charset}">\n'
        ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle" if theme == "news" else "BlogPosting",
                         "headline": a.title, "datePublished": a.published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "author": {"@type": "Person", "name": a.author}}, ensure_ascii=False)
        head = (f'<!DOCTYPE html>\n<html lang="{a.lang}">\n<head>\n{charset_tag}'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{e(a.title)} | {e(name)}</title>\n"
                f'<meta name="description" content="{e(description)}">\n'
                f'<meta property="og:title" content="{e(a.title)}">\n<meta property="og:type" content="article">\n'
                f'<link rel="canonical" href="{e(canonical or a.url)}">\n'
                f'<link rel="stylesheet" href="/assets/css/main.{r.getrandbits(32):08x}.css">\n'
                f"<style>.cookie-banner{{position:fixed;bottom:0;left:0;right:0;background:#222;color:#fff;padding:1em}}"
                f".sidebar{{float:right;width:30%}}</style>\n"
                f'<script type="application/ld+json">{ld}</script>\n'
                f'<script async src="https://stats.{domain}/tag.js"></script>\n</head>\n')
        nav = "".join(f'<li><a href="/{_slug(x) if a.lang in ("en", "de", "fr", "es") else "c" + str(i)}/">{e(x)}</a></li>'
                      for i, x in enumerate(c["nav"]))
        cookie = (f'<div id="cookie-consent" class="cookie-banner" role="dialog"><p>{e(c["cookie"])}</p>'
                  f'<button class="accept">{e(c["cookie_buttons"][0])}</button> '
                  f'<button class="manage">{e(c["cookie_buttons"][1])}</button></div>\n')
        comments = [(r.choice(c["names"]), r.choice(c["comment_texts"])) for _ in range(r.randint(0, 4))]
        popular = self.other_titles(a.lang, a.topic, 5)
        footer = (f'<footer class="site-footer">\n<nav class="footer-nav">'
                  + " | ".join(f'<a href="/{_slug(x) if a.lang == "en" else "p" + str(i)}/">{e(x)}</a>'
                               for i, x in enumerate(c["footer"]))
                  + f"</nav>\n<p>&copy; {CRAWL_START.year} {e(name)}. {e(c['rights'])}</p>\n</footer>\n")
        analytics = ("<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}"
                     f"gtag('js',new Date());gtag('config','G-{r.getrandbits(28):07X}');</script>\n")
        if theme == "forum":
            posts = [f'<div class="post" id="post-1"><div class="user"><a class="username" href="/members/{_slug(a.author)}/">'
                     f'{e(a.author)}</a><span class="user-title">Well-known member</span><dl><dt>Joined</dt>'
                     f'<dd>{r.choice(["Jan", "Apr", "Sep", "Nov"])} {r.randint(2012, 2022)}</dd><dt>Messages</dt>'
                     f'<dd>{r.randint(20, 4000):,}</dd></dl></div>\n<div class="post-body">\n' + "\n".join(body)
                     + '\n</div>\n<div class="post-footer"><a href="#">Like</a> <a href="#">Quote</a> <a href="#">Reply</a> '
                     '<a href="#">Report</a></div></div>']
            for i, (who, text) in enumerate(comments, 2):
                posts.append(f'<div class="post" id="post-{i}"><div class="user"><a class="username" href="#">{e(who)}</a>'
                             f'</div><div class="post-body"><p>{e(text)}</p></div><div class="post-footer">'
                             f'<a href="#">Like</a> <a href="#">Quote</a> <a href="#">Reply</a></div></div>')
            page = (f'<body class="forum">\n<div class="forum-header"><a class="logo" href="/">{e(name)} Forums</a>\n'
                    f'<nav><a href="/forums/">Forums</a> | <a href="/whats-new/">What\'s new</a> | <a href="/members/">Members</a>'
                    f' | <a href="/login/">Log in</a> | <a href="/register/">Register</a></nav></div>\n{cookie}'
                    f'<div class="breadcrumb"><a href="/forums/">Forums</a> &raquo; <a href="/forums/general/">General discussion</a></div>\n'
                    f'<h1 class="thread-title">{e(a.title)}</h1>\n<div class="thread-meta">Started by {e(a.author)}, {date_txt}</div>\n'
                    f'<div class="posts">\n' + "\n".join(posts) + '\n</div>\n<div class="pagination">Page 1 of 1</div>\n'
                    f'<div class="similar"><h3>Similar threads</h3><ul>'
                    + "".join(f'<li><a href="/threads/{_slug(t)}/">{e(t)}</a></li>' for t in popular[:3])
                    + f"</ul></div>\n{footer}{analytics}</body>\n</html>\n")
            return head + page
        if theme == "news":
            related = "".join(f'<li><a href="/{_slug(t) if a.lang == "en" else "n" + str(i)}.html">{e(t)}</a></li>'
                              for i, t in enumerate(popular[:3]))
            most = "".join(f"<li><a href=\"#\">{e(t)}</a></li>" for t in popular[3:])
            lead, rest = body[0], body[1:]
            lead = lead.replace("<p>", '<p class="lead"><strong>', 1).replace("</p>", "</strong></p>", 1)
            page = (f'<body class="article-page">\n<div class="topbar"><span>{date_txt}</span> <a href="/subscribe/">'
                    f'{e(c["subscribe"])}</a> <a href="/login/">Sign in</a></div>\n'
                    f'<header class="masthead"><a class="logo" href="/">{e(name)}</a>\n<nav class="sections"><ul>{nav}</ul></nav>\n'
                    f'<form class="search" action="/search/"><input type="search" name="q" placeholder="{e(c["search"])}"></form>\n</header>\n'
                    f'<main>\n<article itemscope itemtype="https://schema.org/NewsArticle">\n'
                    f'<h1 itemprop="headline">{e(a.title)}</h1>\n'
                    f'<p class="byline">{e(c["posted_by"])} <span itemprop="author">{e(a.author)}</span> | '
                    f'<time datetime="{date_iso}">{date_txt}</time></p>\n'
                    f'<figure><img src="/images/{a.published:%Y/%m}/{r.getrandbits(32):08x}.jpg" alt="" width="800" height="450">'
                    f'<figcaption>{e(a.title)}</figcaption></figure>\n'
                    f'<div class="article-body" itemprop="articleBody">\n{lead}\n' + "\n".join(rest) + "\n</div>\n"
                    f'<div class="share-bar">{e(c["share"])}: <a href="#">Facebook</a> <a href="#">X</a> '
                    f'<a href="#">WhatsApp</a> <a href="#">Email</a></div>\n'
                    f'<section class="related"><h2>{e(c["related"])}</h2><ul>{related}</ul></section>\n</article>\n'
                    f'<aside class="ad-slot"><div class="ad">Advertisement</div></aside>\n</main>\n'
                    f'<div class="most-read"><h2>{e(c["popular"])}</h2><ol>{most}</ol></div>\n'
                    f"{footer}{cookie}{analytics}</body>\n</html>\n")
            return head + page
        comment_html = "".join(
            f'<li class="comment"><div class="comment-author">{e(who)}</div>'
            f'<div class="comment-date">{(a.published + timedelta(days=r.randint(1, 60))):%Y-%m-%d}</div>'
            f'<p>{e(text)}</p><a class="reply" href="#">Reply</a></li>\n' for who, text in comments)
        tags = ", ".join(f'<a href="/tag/{_slug(t) if a.lang == "en" else "t" + str(i)}/">{e(t)}</a>'
                         for i, t in enumerate(r.sample(self.tag_pool(a), 3)))
        page = (f'<body class="post-template">\n{cookie}<header class="site-header"><a class="logo" href="/">{e(name)}</a>\n'
                f'<nav class="main-nav"><ul>{nav}</ul></nav>\n'
                f'<form class="search" action="/"><input type="search" name="s" placeholder="{e(c["search"])}"></form>\n</header>\n'
                f'<div class="container">\n<main id="content">\n<article class="post">\n<h1 class="entry-title">{e(a.title)}</h1>\n'
                f'<div class="entry-meta">{e(c["posted_by"])} <a href="/author/{_slug(a.author)}/">{e(a.author)}</a> '
                f'<time datetime="{date_iso}">{date_txt}</time> &middot; <a href="#comments">{len(comments)} {e(c["comments"])}</a></div>\n'
                f'<div class="entry-content">\n' + "\n".join(body) + "\n</div>\n"
                f'<div class="entry-tags">{e(c["tags"])}: {tags}</div>\n'
                f'<div class="share">{e(c["share"])}: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Email</a></div>\n'
                f'</article>\n<section id="comments" class="comments"><h3>{len(comments)} {e(c["comments"])}</h3>\n'
                f'<ol class="comment-list">\n{comment_html}</ol>\n<div id="respond"><h3>{e(c["reply"])}</h3><form>'
                f'<textarea name="comment"></textarea><input name="author"><button>OK</button></form></div>\n</section>\n</main>\n'
                f'<aside class="sidebar">\n<section class="widget"><h3>{e(c["popular"])}</h3><ul>'
                + "".join(f'<li><a href="/{_slug(t) if a.lang == "en" else "p" + str(i)}/">{e(t)}</a></li>'
                          for i, t in enumerate(popular))
                + f'</ul></section>\n<section class="widget newsletter"><h3>{e(c["newsletter"])}</h3><p>{e(c["newsletter_text"])}</p>'
                f'<form><input type="email" name="email"><button>{e(c["subscribe"])}</button></form></section>\n</aside>\n</div>\n'
                f"{footer}{analytics}</body>\n</html>\n")
        return head + page

    def tag_pool(self, a: Article) -> list[str]:
        if a.lang == "en":
            bank = T.EN_TOPICS[a.topic]
            return [a.topic, *bank["things"][:3], *bank["activity"][:2]]
        return T.LANGS[a.lang]["things"][:6]

    # ---------------------------------------------------------------- captures
    def headers(self, content_type: str, extra: list[tuple[str, str]] = (), cc_decoded: bool | None = None) -> list:
        r = self.rng
        h = [("Server", r.choice(SERVERS)), ("Content-Type", content_type)]
        if r.random() < 0.4:
            h.append(("Last-Modified", _http_date(CRAWL_START - timedelta(days=r.randint(1, 400)))))
        h.append(("Cache-Control", r.choice(["max-age=600", "no-cache", "public, max-age=3600", "private"])))
        if r.random() < 0.3:
            h.append(("X-Powered-By", r.choice(["PHP/8.2.7", "Express", "WordPress"])))
        if r.random() < 0.3:
            h.append(("Set-Cookie", f"sid={r.getrandbits(64):016x}; Path=/; HttpOnly"))
        h.extend(extra)
        h.append(("Vary", "Accept-Encoding"))
        if cc_decoded if cc_decoded is not None else r.random() < 0.6:
            # Common Crawl stores the decoded payload and renames the coding header
            h.append(("X-Crawler-Content-Encoding", "gzip"))
        h.append(("Connection", "close"))
        return h

    def html_capture(self, a: Article, kind: str, codec: str = "utf-8", label: str = "UTF-8",
                     declared: str = "both", canonical: str | None = None, url: str | None = None) -> Capture:
        doc = self.render(a, label if declared in ("both", "meta") else None, canonical)
        body = doc.encode(codec, errors="xmlcharrefreplace")
        ctype = self.rng.choice([f"text/html; charset={label}", f"text/html;charset={label}"]) \
            if declared in ("both", "header") else "text/html"
        return Capture(url or a.url, kind, a.lang, body, headers=self.headers(ctype), charset=codec, declared=declared)


def _ctype(c: Capture) -> str:
    return next(v for k, v in c.headers if k == "Content-Type")


def _perturb(blocks: list, rng: random.Random, n: int) -> tuple[list, int]:
    """Change ``n`` words in the paragraphs (synonyms, then numbers); returns new blocks and the count."""
    new = [(k, list(v) if isinstance(v, list) else v) for k, v in blocks]
    spots = [(bi, wi) for bi, (k, v) in enumerate(new) if k == "p"
             for wi, w in enumerate(v.split(" ")) if w.strip(".,:;").lower() in SYNONYMS or w.strip(".,").isdigit()]
    changed = 0
    for bi, wi in rng.sample(spots, min(n, len(spots))):
        words = new[bi][1].split(" ")
        w = words[wi]
        core = w.strip(".,:;")
        if core.isdigit():
            rep = str(int(core) + rng.randint(1, 9))
        else:
            rep = SYNONYMS[core.lower()]
            rep = _cap(rep) if core[:1].isupper() else rep
        words[wi] = w.replace(core, rep, 1)
        new[bi] = ("p", " ".join(words))
        changed += 1
    if changed == 0:  # no candidates: append a word to the last paragraph
        bi = max(i for i, (k, _) in enumerate(new) if k == "p")
        new[bi] = ("p", new[bi][1] + " Indeed.")
        changed = 1
    return new, changed


def _simple_page(title: str, body_html: str, lang: str = "en", extra_head: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"{extra_head}</head>\n<body>\n{body_html}\n</body>\n</html>\n")


def _build(w: _Writer) -> list[Capture]:
    r, e = w.rng, html.escape
    caps: list[Capture] = []

    # -- English articles: the bulk of the crawl; a few headers/meta variations in charset declaration
    en_articles = []
    for i in range(N_EN_ARTICLES):
        a = w.new_article("en", r.choice(EN_SITES))
        en_articles.append(a)
        declared = ["both", "both", "both", "header", "meta", "both"][i % 6] if i != 7 else "none"
        label = r.choice(["UTF-8", "utf-8"]) if declared != "none" else ""
        if declared == "none":  # pure-ASCII page with no declaration anywhere
            cap = w.html_capture(a, "article", "ascii", "", "none")
        else:
            cap = w.html_capture(a, "article", "utf-8", label, declared)
        caps.append(cap)
    by_url = {c.url: c for c in caps}

    # -- other languages, some in legacy charsets
    for lang, variants in LANG_PAGES.items():
        for j, (codec, label, declared) in enumerate(variants):
            a = w.new_article(lang, LANG_SITES[lang][j % 2])
            caps.append(w.html_capture(a, "article", codec, label, declared))

    # -- exact duplicates: the same bytes under another URL
    originals = r.sample(en_articles[:40], 6)
    for k, a in enumerate(originals):
        src = by_url[a.url]
        host = a.url.split("/")[2]
        path = a.url.split(host, 1)[1]
        variants = [f"https://m.{host.removeprefix('www.').removeprefix('forum.')}{path}",
                    a.url.rstrip("/") + ("&" if "?" in a.url else "?") + "print=1",
                    f"https://{host}/amp{path}",
                    f"https://copycat-news.example/{a.published:%Y}/{_slug(a.title)}.html",
                    f"https://aggregator-feed.example/item/{r.randint(100000, 999999)}",
                    f"http://{host}{path}"]
        group = f"exact-{k}"
        src.group = group
        caps.append(Capture(w.unique(variants[k]), "exact_dup", "en", src.body, headers=w.headers(_ctype(src)),
                            charset=src.charset, declared=src.declared, group=group))

    # -- syndicated: the same article text on another site's template
    for k, a in enumerate(r.sample(en_articles[40:52], 3)):
        site = r.choice([s for s in EN_SITES if s[2] == "news" and s[0] != a.site[0]])
        copy = Article("en", site, a.title, a.blocks, a.author, a.published,
                       w.unique(f"https://www.{site[0]}/syndicated/{_slug(a.title)}.html"), a.topic)
        by_url[a.url].group = f"synd-{k}"
        cap = w.html_capture(copy, "syndicated", canonical=a.url)
        cap.group = f"synd-{k}"
        caps.append(cap)

    # -- near duplicates: a few words changed, same site template, different URL
    for k, a in enumerate(en_articles[52:60]):
        blocks, changed = _perturb(a.blocks, r, r.randint(2, 4))
        copy = Article("en", a.site, a.title, blocks, a.author, a.published,
                       w.unique(a.url.rstrip("/") + ("-updated/" if a.url.endswith("/") else "?rev=2")), a.topic)
        by_url[a.url].group = f"near-{k}"
        cap = w.html_capture(copy, "near_dup")
        cap.group, cap.changed_words = f"near-{k}", changed
        caps.append(cap)

    # -- recrawls (later pass): utm-tagged URL with identical bytes, or the same URL with fresh boilerplate
    for k, a in enumerate(en_articles[60:64]):
        src = by_url[a.url]
        src.group = f"recrawl-{k}"
        if k < 2:
            url = a.url + ("&" if "?" in a.url else "?") + r.choice(
                ["utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
                 "utm_source=twitter&utm_medium=social", "utm_source=feed&utm_medium=rss&utm_content=top"])
            cap = Capture(w.unique(url), "recrawl", "en", src.body, headers=w.headers(_ctype(src)),
                          charset=src.charset, declared=src.declared)
        else:
            cap = w.html_capture(a, "recrawl", url=a.url)
        cap.group, cap.later = src.group, True
        caps.append(cap)

    # -- a revisit record: a third fetch of one page whose payload did not change
    target = by_url[en_articles[60].url]
    caps.append(Capture(target.url, "revisit", "en", b"", headers=w.headers(_ctype(target), cc_decoded=False),
                        charset=target.charset, declared=target.declared, group=target.group, later=True,
                        refers_to=target))

    # -- spam: keyword stuffing, gambling and adult-like domains
    for k, (domain, topic) in enumerate([("cheap-watches-deals.example", "watches"), ("fast-loans-now.example", "loans"),
                                          ("best-pills-store.example", "pills")]):
        kws = T.SPAM_KEYWORDS[topic]
        stuffed = [" ".join(r.choice(kws) + r.choice(["", " online", " sale", " today", " best price", " for you"])
                            for _ in range(r.randint(25, 40))) for _ in range(3)]
        title = " | ".join(_cap(x) for x in kws[:4])
        body = (f"<h1>{e(title)}</h1>\n" + "\n".join(f"<p>{e(p)}</p>" for p in stuffed)
                + f'\n<div style="display:none">{e(" ".join(kws * 8))}</div>\n<ul>'
                + "".join(f'<li><a href="/{_slug(x)}-{i}.html">{e(x)}</a></li>' for i, x in enumerate(kws * 3))
                + "</ul>\n<footer>" + " | ".join(e(x) for x in kws) + "</footer>")
        page = _simple_page(title, body, extra_head=f'<meta name="keywords" content="{e(", ".join(kws * 3))}">\n')
        caps.append(Capture(w.unique(f"https://www.{domain}/{_slug(kws[0])}-{r.randint(1, 999)}.html"), "spam_keywords",
                            "en", page.encode(), headers=w.headers("text/html; charset=utf-8")))
    for domain in ["casino-bonus-online.example", "free-spins-jackpot.example", "betting-odds-today.example"]:
        lines = []
        for _ in range(r.randint(12, 18)):
            p1, p2 = r.sample(T.GAMBLING_PHRASES, 2)
            lines.append(r.choice([f"Claim your {p1} now!", f"{p1.upper()} - {p2}!!!",
                                   f"Best {p1} and {p2} of 2024, only here.", f"Sign up today and get {p1} + {p2}."]))
        body = (f"<h1>{e(_cap(T.GAMBLING_PHRASES[0]))}</h1>\n" + "\n".join(f"<p>{e(x)}</p>" for x in lines)
                + "\n<p>18+ | Play responsibly | T&amp;Cs apply</p>")
        caps.append(Capture(w.unique(f"https://{domain}/"), "spam_gambling", "en",
                            _simple_page("Casino bonus - free spins - jackpot", body).encode(),
                            headers=w.headers("text/html; charset=UTF-8")))
    for domain in ["hot-singles-xxx.example", "live-cams-adult.example"]:
        thumbs = "\n".join(f'<div class="thumb"><a href="/show/{r.randint(1000, 9999)}"><img src="/t/{i}.jpg" alt="'
                           f'{e(r.choice(T.ADULT_PHRASES))}"></a><span>{r.randint(100, 99999):,} views</span></div>'
                           for i in range(16))
        body = (f'<div class="age-gate">You must be 18+ to enter. <a href="/enter">Enter</a> <a href="/leave">Leave</a></div>\n'
                f"<h1>{e(_cap(r.choice(T.ADULT_PHRASES)))}</h1>\n<p>"
                + e(" - ".join(r.choice(T.ADULT_PHRASES) for _ in range(20))) + f"</p>\n{thumbs}")
        caps.append(Capture(w.unique(f"https://www.{domain}/"), "spam_adult", "en",
                            _simple_page("Free live cams xxx chat 18+", body).encode(),
                            headers=w.headers("text/html; charset=utf-8")))

    # -- low quality: repeated lines, all-caps lines, social counters
    for k in range(2):
        a = en_articles[k]
        line = r.choice(["Posted in General | Leave a comment", "Read more about our weekly specials at the store.",
                         "Click here to read the full story"])
        items = "\n".join(f"<h3>{e(a.title)}</h3>\n<p>{e(line)}</p>" for _ in range(r.randint(12, 18)))
        caps.append(Capture(w.unique(f"https://{a.site[0]}/tag/archive/page/{k + 2}/"), "repeated_lines", "en",
                            _simple_page(f"Archive - page {k + 2}", items).encode(),
                            headers=w.headers("text/html; charset=utf-8")))
    for k in range(2):
        lines = r.sample(T.CAPS_LINES, 5) + ["Visit our showroom on Mill Street, open every day from nine to six."]
        r.shuffle(lines)
        body = "\n".join(f"<p>{e(x)}</p>" for x in lines * 2)
        caps.append(Capture(w.unique(f"https://www.mega-deals-{k + 1}.example/offers/"), "allcaps_lines", "en",
                            _simple_page("MEGA DEALS - OFFERS", body).encode(),
                            headers=w.headers("text/html; charset=utf-8")))
    for k in range(2):
        posts = []
        for _ in range(r.randint(8, 12)):
            a = r.choice(en_articles)
            posts.append(f'<div class="post"><p>{e(w.fill(r.choice(T.EN_SENTENCES), "en", a.topic))}</p>\n'
                         f'<p>{r.randint(1, 999)} likes</p>\n<p>{r.randint(0, 99)} comments</p>\n'
                         f'<p>Share ({r.randint(0, 50)})</p></div>')
        user = _slug(r.choice(T.CHROME["en"]["names"])).replace("-", "")
        caps.append(Capture(w.unique(f"https://social-feed.example/u/{user}{k}"), "social_counters", "en", _simple_page("Feed", "\n".join(posts)).encode(),
                            headers=w.headers("text/html; charset=utf-8")))

    # -- short pages
    shorts = [("Coming soon", "<h1>Coming soon</h1><p>Our new site launches next month.</p>", "/"),
              ("Sign in", '<form><label>Username</label><input name="u"><label>Password</label>'
                          '<input type="password" name="p"><button>Sign in</button></form><a href="/reset">Forgot password?</a>',
               "/login"),
              ("Moved", "<p>This page has moved to our new site.</p>", "/old-page.html"),
              ("Blue ceramic mug", "<h1>Blue ceramic mug</h1><p>12.99 EUR. In stock.</p><button>Add to cart</button>",
               "/shop/blue-ceramic-mug"),
              ("Access denied", "<h1>Access denied</h1><p>You do not have permission to view this page.</p>", "/members/")]
    for k, (title, body, path) in enumerate(shorts):
        caps.append(Capture(w.unique(f"https://{r.choice(EN_SITES)[0]}{path}"), "short", "en",
                            _simple_page(title, body).encode(), headers=w.headers("text/html; charset=utf-8")))

    # -- records the extractor must skip or handle specially
    blog = EN_SITES[0][0]
    caps.append(Capture(w.unique(f"https://{blog}/2019/05/a-post-that-was-deleted/"), "http_404", "en",
                        _simple_page("Page not found", "<h1>Page not found</h1><p>Sorry, the page you are looking for "
                                     'does not exist. <a href="/">Go home</a>.</p>').encode(),
                        status=404, headers=w.headers("text/html; charset=utf-8")))
    target_url = en_articles[10].url
    caps.append(Capture(w.unique("http://" + target_url.split("://", 1)[1]), "redirect_301", None,
                        _simple_page("301 Moved Permanently", f'<h1>Moved Permanently</h1><p>The document has moved '
                                     f'<a href="{e(target_url)}">here</a>.</p>').encode(), status=301,
                        charset="iso-8859-1", headers=w.headers("text/html; charset=iso-8859-1", [("Location", target_url)],
                                                                cc_decoded=False)))
    caps.append(Capture(w.unique(f"https://{blog}/wp-content/uploads/2024/03/header-photo.png"), "image_png", None,
                        _png(), mime="image/png", charset=None, declared="none",
                        headers=w.headers("image/png", cc_decoded=False)))
    notes = ["Release notes for fieldbook 2.4", "", "This release fixes the export of observation logs to CSV.",
             "The sync button now waits for the upload to finish before it reports success.",
             "Thanks to everyone who sent in reports from the spring field season.", "",
             "Known issues: the map view is slow on very old phones."]
    caps.append(Capture(w.unique(f"https://downloads.{EN_SITES[4][0]}/fieldbook/CHANGES.txt"), "text_plain", "en",
                        "\n".join(notes).encode() + b"\n", mime="text/plain",
                        headers=w.headers("text/plain; charset=utf-8")))
    caps.append(Capture(w.unique(f"https://{EN_SITES[7][0]}/documents/annual-report-2023.pdf"), "pdf", "en",
                        _pdf(["Pennywise Household Club - annual report 2023",
                              "Membership grew to 214 households this year.",
                              "The free budgeting workshops ran every second Tuesday."]),
                        mime="application/pdf", charset=None, declared="none",
                        headers=w.headers("application/pdf", cc_decoded=False)))
    caps.append(Capture(w.unique(f"https://{EN_SITES[8][0]}/download.php?id={r.randint(100, 999)}"), "binary_html",
                        None, r.randbytes(3000), mime="application/octet-stream", charset=None, declared="header",
                        headers=w.headers("text/html; charset=utf-8", cc_decoded=False)))

    a = w.new_article("en", r.choice(EN_SITES))
    doc = w.render(a, "utf-8").encode()
    caps.append(Capture(a.url, "chunked", "en", _chunked(doc, r), headers=w.headers(
        "text/html; charset=utf-8", [("Transfer-Encoding", "chunked")], cc_decoded=False)))
    a = w.new_article("en", r.choice(EN_SITES))
    doc = w.render(a, "utf-8").encode()
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    gz = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + c.compress(doc) + c.flush()
          + struct.pack("<II", zlib.crc32(doc), len(doc) & 0xFFFFFFFF))
    caps.append(Capture(a.url, "gzip_encoded", "en", gz, headers=w.headers(
        "text/html; charset=utf-8", [("Content-Encoding", "gzip")], cc_decoded=False)))
    return caps


# --------------------------------------------------------------------------- WARC writing

def _record(version: str, headers: list[tuple[str, str]], block: bytes) -> bytes:
    head = f"{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return _gzip_member(head.encode("utf-8") + block + b"\r\n\r\n")


def _ip(rng: random.Random) -> str:
    return f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randint(1, 254)}"


def sample_bytes(seed: int = 0) -> tuple[bytes, dict]:
    """The sample WARC (gzipped, one member per record) and its summary, in memory."""
    w = _Writer(seed)
    caps = _build(w)
    first = [c for c in caps if not c.later]
    later = [c for c in caps if c.later]
    w.rng.shuffle(first)
    filename = f"mdr-sample-{seed:05d}.warc.gz"
    out = bytearray()
    info_id = w.record_id()
    info = (f"software: mdr sample generator (pipeline.sample.generate)\r\nformat: WARC File Format 1.0\r\n"
            f"isPartOf: MDR-SAMPLE-{seed}\r\ndescription: Synthetic pages for testing the mdr pipeline; all text is generated\r\n"
            f"robots: classic\r\noperator: mdr\r\npublisher: mdr (synthetic data)\r\n").encode()
    out += _record("WARC/1.0", [("WARC-Type", "warcinfo"), ("WARC-Date", _warc_date(CRAWL_START)),
                                ("WARC-Filename", filename), ("WARC-Record-ID", info_id),
                                ("Content-Type", "application/warc-fields"), ("Content-Length", str(len(info)))], info)
    records = Counter({"warcinfo": 1})
    now = CRAWL_START
    for i, c in enumerate(first + later):
        if i == len(first):
            now = CRAWL_START + RECRAWL_AFTER
        now += timedelta(seconds=w.rng.randint(1, 40))
        c.date = _warc_date(now)
        ip = _ip(w.rng)
        host = c.url.split("/")[2]
        path = "/" + c.url.split("/", 3)[3] if c.url.count("/") >= 3 else "/"
        req = (f"GET {path} HTTP/1.1\r\nUser-Agent: mdr-sample-bot/1.0 (synthetic test data)\r\n"
               f"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
               f"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: br,gzip\r\nHost: {host}\r\n"
               f"Connection: Keep-Alive\r\n\r\n").encode()
        req_id = w.record_id()
        out += _record("WARC/1.0", [("WARC-Type", "request"), ("WARC-Date", c.date), ("WARC-Record-ID", req_id),
                                    ("Content-Length", str(len(req))), ("Content-Type", "application/http; msgtype=request"),
                                    ("WARC-Warcinfo-ID", info_id), ("WARC-IP-Address", ip), ("WARC-Target-URI", c.url),
                                    ("WARC-Block-Digest", _sha1_b32(req))], req)
        records["request"] += 1
        reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}[c.status]
        hdrs = [("Date", _http_date(now)), *c.headers]
        if not any(k.lower() == "transfer-encoding" for k, _ in c.headers):
            src = c.refers_to.body if c.refers_to else c.body
            hdrs.append(("Content-Length", str(len(src))))
        http_head = (f"HTTP/1.1 {c.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n").encode()
        c.record_id = w.record_id()
        if c.refers_to is not None:
            ref = c.refers_to
            c.payload_digest = ref.payload_digest
            out += _record("WARC/1.0", [
                ("WARC-Type", "revisit"), ("WARC-Date", c.date), ("WARC-Record-ID", c.record_id),
                ("Content-Length", str(len(http_head))), ("Content-Type", "application/http; msgtype=response"),
                ("WARC-Warcinfo-ID", info_id), ("WARC-Concurrent-To", req_id), ("WARC-IP-Address", ip),
                ("WARC-Target-URI", c.url),
                ("WARC-Profile", "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"),
                ("WARC-Refers-To-Target-URI", ref.url), ("WARC-Refers-To-Date", ref.date),
                ("WARC-Payload-Digest", ref.payload_digest), ("WARC-Block-Digest", _sha1_b32(http_head))], http_head)
            records["revisit"] += 1
            continue
        block = http_head + c.body
        c.payload_digest = _sha1_b32(c.body)
        out += _record("WARC/1.0", [
            ("WARC-Type", "response"), ("WARC-Date", c.date), ("WARC-Record-ID", c.record_id),
            ("Content-Length", str(len(block))), ("Content-Type", "application/http; msgtype=response"),
            ("WARC-Warcinfo-ID", info_id), ("WARC-Concurrent-To", req_id), ("WARC-IP-Address", ip),
            ("WARC-Target-URI", c.url), ("WARC-Payload-Digest", c.payload_digest),
            ("WARC-Block-Digest", _sha1_b32(block)), ("WARC-Identified-Payload-Type", c.mime)], block)
        records["response"] += 1
        meta = f"fetchTimeMs: {w.rng.randint(40, 2500)}\r\n"
        if c.charset and c.lang:
            meta += f"charset-detected: {c.charset.upper().replace('_', '-')}\r\n"
            meta += "languages-cld2: " + json.dumps({
                "reliable": True, "text-bytes": len(c.body), "languages": [{
                    "code": c.lang, "code-iso-639-3": ISO3[c.lang], "text-covered": 0.99, "score": 990.0,
                    "name": LANG_NAMES[c.lang]}]}, separators=(",", ":")) + "\r\n"
        meta_b = meta.encode()
        out += _record("WARC/1.0", [("WARC-Type", "metadata"), ("WARC-Date", c.date), ("WARC-Record-ID", w.record_id()),
                                    ("Content-Length", str(len(meta_b))), ("Content-Type", "application/warc-fields"),
                                    ("WARC-Warcinfo-ID", info_id), ("WARC-Concurrent-To", c.record_id),
                                    ("WARC-Target-URI", c.url), ("WARC-Block-Digest", _sha1_b32(meta_b))], meta_b)
        records["metadata"] += 1
    return bytes(out), _summary(seed, filename, first + later, records)


def _summary(seed: int, filename: str, caps: list[Capture], records: Counter) -> dict:
    responses = [c for c in caps if c.refers_to is None]
    groups: dict[str, list[str]] = {}
    for c in sorted(caps, key=lambda c: c.kind != "article"):  # the original first
        if c.group and c.kind != "revisit":
            groups.setdefault(c.group, []).append(c.url)
    return {
        "seed": seed,
        "filename": filename,
        "records": dict(sorted(records.items())),
        "captures": len(caps),
        "kinds": dict(sorted(Counter(c.kind for c in caps).items())),
        "languages": dict(sorted(Counter(c.lang for c in responses if c.lang).items())),
        "status": {str(k): v for k, v in sorted(Counter(c.status for c in responses).items())},
        "payload_types": dict(sorted(Counter(c.mime for c in responses).items())),
        "charsets": dict(sorted(Counter(c.charset for c in responses if c.charset and c.mime == "text/html").items())),
        "html_200": sum(1 for c in responses if c.status == 200 and c.mime == "text/html"),
        "groups": {g: urls for g, urls in sorted(groups.items())},
        "pages": [{"url": c.url, "kind": c.kind, "lang": c.lang, "status": c.status, "mime": c.mime,
                   "charset": c.charset, "declared": c.declared, "group": c.group, "date": c.date,
                   "record_id": c.record_id, "payload_digest": c.payload_digest, "changed_words": c.changed_words}
                  for c in caps],
    }


def write_sample_warc(path: str, seed: int = 0) -> dict:
    """Write the sample WARC to ``path`` (any URI the storage layer writes) and return its summary."""
    from pipeline.core.storage import Storage
    data, summary = sample_bytes(seed)
    Storage().write_bytes(path, data)
    summary["bytes"] = len(data)
    return summary


BLOCKLIST_KINDS = {"spam_gambling": "gambling", "spam_adult": "adult"}


def write_sample_blocklist(root: str, summary: dict) -> dict[str, list[str]]:
    """A UT1-format blocklist (``<category>/domains``) naming the sample's own made-up spam domains."""
    from urllib.parse import urlsplit

    from pipeline.core.storage import Storage, join
    lists: dict[str, list[str]] = {}
    for p in summary["pages"]:
        cat = BLOCKLIST_KINDS.get(p["kind"])
        if cat:
            host = urlsplit(p["url"]).hostname or ""
            lists.setdefault(cat, []).append(host.removeprefix("www."))
    store = Storage()
    for cat, domains in lists.items():
        store.write_text(join(root, cat, "domains"), "\n".join(sorted(set(domains))) + "\n")
    return lists


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.sample.generate", description="Write the synthetic sample WARC.")
    ap.add_argument("out", help="output path or URI, e.g. sample.warc.gz")
    ap.add_argument("--seed", type=int, default=0, help="seed; the same seed gives byte-identical output")
    ap.add_argument("--json", action="store_true", help="print the full summary as JSON")
    args = ap.parse_args(argv)
    s = write_sample_warc(args.out, args.seed)
    if args.json:
        json.dump(s, sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        print(f"wrote {args.out}: {s['bytes']:,} bytes, {s['captures']} captures, records {s['records']}, "
              f"languages {s['languages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
