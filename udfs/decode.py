"""Bytes of an HTTP payload -> text: the declared charset when it is right, else a detected one.

Order: byte-order mark; strict UTF-8 (bytes that are valid UTF-8 beyond ASCII are UTF-8 in practice,
whatever the page declares: legacy 8-bit text almost never forms valid multi-byte sequences); the HTTP
Content-Type charset; the <meta> charset in the first 4 KB; charset detection (charset_normalizer,
already a trafilatura dependency); then the declared charset with replacement characters.
Labels are mapped as browsers do (latin-1 -> cp1252).
"""
from __future__ import annotations

import codecs
import re

_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]+)""", re.I)
_XML = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:\-]+)""", re.I)
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?([a-zA-Z0-9_.:\-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Browsers decode these labels with a superset; decoding with the label itself breaks real pages.
_ALIASES = {"latin1": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252", "iso8859-1": "cp1252",
            "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-9": "cp1254", "tis-620": "cp874",
            "gb2312": "gb18030", "gbk": "gb18030", "x-sjis": "shift_jis", "shift-jis": "shift_jis",
            "sjis": "shift_jis", "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "x-euc-jp": "euc_jp",
            "unicode": "utf-8", "utf8": "utf-8"}


class DecodeError(ValueError):
    """The payload is not text in any encoding we can find."""


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when the label is unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _CT_CHARSET.search(content_type)
    return normalize_charset(m.group(1)) if m else None


def sniff_charset(head: bytes) -> str | None:
    """Charset declared inside the document (<meta charset>, http-equiv, or an XML declaration)."""
    m = _META.search(head) or _XML.search(head)
    return normalize_charset(m.group(1).decode("ascii", "ignore")) if m else None


_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or 13 < b)


def looks_binary(payload: bytes, sample: int = 4096) -> bool:
    """NUL bytes or many control characters in the first KB: not text, whatever the label says."""
    head = payload[:sample]
    if not head:
        return False
    if head[:4] in (b"%PDF", b"\x89PNG", b"GIF8", b"PK\x03\x04") or head[:3] == b"\xff\xd8\xff":
        return True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return head.count(0) > len(head) // 100 or controls > len(head) // 10


def _strict(payload: bytes, enc: str | None) -> str | None:
    if not enc:
        return None
    try:
        return payload.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_payload(payload: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, codec used). Raises DecodeError only for payloads no codec can read as text."""
    for bom, enc in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom):].decode(enc, "replace"), enc
    declared = charset_from_content_type(content_type)
    sniffed = sniff_charset(payload[:4096])
    for enc in ("utf-8", declared, sniffed):
        text = _strict(payload, enc)
        if text is not None:
            return text, enc
    detected = None
    try:
        from charset_normalizer import from_bytes
        matches = list(from_bytes(payload[:65536]))
        if matches:
            best = matches[0]
            tied = [m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
            # on a tie, windows-1252 is by far the web's most common legacy charset
            detected = normalize_charset("cp1252" if "cp1252" in tied else best.encoding)
    except ImportError:
        pass
    for enc in (detected, declared, sniffed):
        if enc:
            text = payload.decode(enc, "replace")
            if text.count("\ufffd") <= max(8, len(text) // 50):
                return text, enc
    raise DecodeError(f"no charset decodes the payload (declared={declared}, meta={sniffed}, detected={detected})")


_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop NUL bytes and lone surrogates, which Parquet/UTF-8 cannot store (cheap when there are none)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _BAD_CHARS.sub("", text)
    return text
