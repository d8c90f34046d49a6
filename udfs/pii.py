"""PII redaction: e-mail addresses and public IP addresses (and, when asked, phone numbers) become fixed placeholders.

datatrove's ``PIIFormatter``, which FineWeb ran on its output, is the reference: the same e-mail pattern and
placeholders (``email@example.com``, ``firstname.lastname@example.org``), the same six IPv4 placeholders, and an
IP address replaced only when ``ipaddress`` calls it global (private, loopback, link-local, shared and
documentation ranges stay). Placeholders are used in turn, by the match's position in the document, so the
result depends on the text alone. Where this module differs, it is for precision or recall, each tested:

- an e-mail domain must end in a letters-only label that is not a file extension (``logo@2x.png``,
  ``lodash@4.17.21`` are not addresses);
- an IPv4 address is not read out of a longer dotted number (``1.3.6.1.4.1``, ``10.0.19041.1``, SVG path data),
  nor with leading zeros, nor right after a word that makes it a number (``version 1.2.3.4``, ``v1.2.3.4``,
  ``section 1.2.3.4``); a quad of small parts (all below 32: ``Pack 2.3.11.4``, ``1.0.0.18``) is a version unless
  an address word comes before it (``DNS server 8.8.8.8``, ``IP: 4.2.2.2``);
- global unicast IPv6 addresses (2000::/3) are replaced too, by documentation addresses (2001:db8::/32);
- phone numbers (off by default): a ``+`` country code with 8 to 15 digits, or a North American number
  ``(212) 555-0123`` / ``212-555-0123``; replaced by the fictional ``555-555-0100``.

A placeholder found again is not counted nor changed, so redacting twice changes nothing.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Iterable

KINDS = ("email", "ip", "phone")
DEFAULT_KINDS = ("email", "ip")

EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
# datatrove's: randomly generated, "they did not respond to ping requests at the time the list was created"
IPV4_PLACEHOLDERS = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11",
                     "18.104.22.168")
IPV6_PLACEHOLDERS = ("2001:db8::1", "2001:db8::2")
PHONE_PLACEHOLDERS = ("555-555-0100",)
_PLACEHOLDERS = frozenset(EMAIL_PLACEHOLDERS + IPV4_PLACEHOLDERS + IPV6_PLACEHOLDERS + PHONE_PLACEHOLDERS)

# datatrove 0.10.1's pattern (RFC 5322's common subset; it spells out A-Za-z)
_EMAIL = re.compile(
    r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*"
    r"[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)\])")
_FILE_EXTENSIONS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff pdf js css html htm php json xml txt "
                             "zip gz tar mp3 mp4 webm avif".split())

# Every pattern starts with a literal or a character class, so the regex engine skips ahead to where a match can
# start (a leading look-behind would make it try every position: 2-3x slower); what must not touch a match on
# either side is checked in Python, on the few candidates.
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
# the words after which a dotted quad is a number: versions, builds, sections (a few characters may sit between)
_NUMBER_CONTEXT = re.compile(r"(?:\b(?:v|ver|version|versions|release|build|rev|revision|firmware|update|kernel|"
                             r"section|sections|chapter|clause|article|figure|fig|table|step|§)\.?[\s:#]*)$",
                             re.IGNORECASE)
_CONTEXT_CHARS = 16
# a quad of small parts (all below 32: 2.3.11.4, 1.0.0.18) reads as a version unless an address word comes before
_VERSION_PART_MAX = 31
_ADDRESS_CONTEXT = re.compile(r"\b(?:ip|ips|ipv4|address|addresses|addr|server|host|dns|ping|gateway|resolver|"
                              r"nameserver|proxy)\b(?:[^.\n]|\.(?=\d)){0,24}$", re.IGNORECASE)
_ADDRESS_CONTEXT_CHARS = 40
# an IPv6 candidate in 2000::/3 (global unicast: the first group is 2xxx or 3xxx); ipaddress decides
_IPV6 = re.compile(r"[23][0-9A-Fa-f]{3}(?::[0-9A-Fa-f]{0,4}){2,7}")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

_PHONE_INTL = re.compile(r"\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,6}")      # +44 20 7946 0958
_PHONE_NANP_PAREN = re.compile(r"\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[\-.][0-9]{4}")    # (212) 555-0123
_PHONE_NANP = re.compile(r"[2-9][0-9]{2}[\-.][2-9][0-9]{2}[\-.][0-9]{4}")           # 212-555-0123


def _clear(m: re.Match, not_before: str, not_after: str, letter_before: bool = False) -> bool:
    """No word character (a letter only where ``letter_before``), nor one of ``not_before`` / ``not_after``, right
    before / after the match; and no '.' and digit after it (the match would be the head of a longer number)."""
    s, i, j = m.string, m.start(), m.end()
    if i > 0 and (s[i - 1].isdigit() or s[i - 1] == "_" or s[i - 1] in not_before
                  or (s[i - 1].isalpha() and not letter_before)):
        return False
    if j < len(s) and (s[j].isalnum() or s[j] == "_" or s[j] in not_after):
        return False
    return not (j + 1 < len(s) and s[j] == "." and s[j + 1].isdigit())


def _email_ok(m: re.Match) -> bool:
    domain = m.group(0).rsplit("@", 1)[1]
    if domain.startswith("["):
        return True
    tld = domain.rsplit(".", 1)[-1].lower()
    return tld.isalpha() and len(tld) >= 2 and tld not in _FILE_EXTENSIONS


def _ipv4_ok(m: re.Match) -> bool:
    s, i = m.string, m.start()
    # a letter may touch it ("%2F104.131.127.216%2F" in a URL); "v1.2.3.4" is a version by the context below
    if not _clear(m, ".", "", letter_before=True) or (i > 1 and s[i - 1] == "." and s[i - 2].isdigit()):
        return False
    try:
        if not ipaddress.IPv4Address(m.group(0)).is_global:   # leading zeros and parts over 255: ValueError
            return False
    except ValueError:
        return False
    if _NUMBER_CONTEXT.search(s[max(0, i - _CONTEXT_CHARS):i]):
        return False
    if all(int(p) <= _VERSION_PART_MAX for p in m.group(0).split(".")):
        return _ADDRESS_CONTEXT.search(s[max(0, i - _ADDRESS_CONTEXT_CHARS):i]) is not None
    return True


def _ipv6_ok(m: re.Match) -> bool:
    s = m.group(0)
    if not _clear(m, ":.", ":") or ("::" not in s and s.count(":") != 7) or sum(1 for g in s.split(":") if g) < 2:
        return False
    try:
        ip = ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return ip in _GLOBAL_UNICAST and ip.is_global


def _phone_intl_ok(m: re.Match) -> bool:
    return _clear(m, "+)]", "-") and 8 <= sum(c.isdigit() for c in m.group(0)) <= 15


def _phone_nanp_ok(m: re.Match) -> bool:
    return _clear(m, "+$€£.-", "-")


# kind -> passes: (pattern, check, placeholders)
_PASSES = {
    "email": ((_EMAIL, _email_ok, EMAIL_PLACEHOLDERS),),
    "ip": ((_IPV4, _ipv4_ok, IPV4_PLACEHOLDERS), (_IPV6, _ipv6_ok, IPV6_PLACEHOLDERS)),
    "phone": ((_PHONE_INTL, _phone_intl_ok, PHONE_PLACEHOLDERS), (_PHONE_NANP_PAREN, _phone_nanp_ok, PHONE_PLACEHOLDERS),
              (_PHONE_NANP, _phone_nanp_ok, PHONE_PLACEHOLDERS)),
}
# a cheap test that a pass can match at all: most documents hold no '@'
_NEEDS = {"email": "@"}


def redact(text: str, kinds: Iterable[str] = DEFAULT_KINDS) -> tuple[str, dict[str, int]]:
    """(text with each match of ``kinds`` replaced by a placeholder, matches replaced per kind)."""
    counts = {}
    for kind in kinds:
        n = 0
        needs = _NEEDS.get(kind)
        if needs is None or needs in text:
            for pattern, ok, placeholders in _PASSES[kind]:
                text, got = _replace(text, pattern, ok, placeholders)
                n += got
        counts[kind] = n
    return text, counts


def _replace(text: str, pattern: re.Pattern, ok, placeholders: tuple[str, ...]) -> tuple[str, int]:
    n = 0

    def sub(m: re.Match) -> str:
        nonlocal n
        s = m.group(0)
        if s in _PLACEHOLDERS or not ok(m):
            return s
        n += 1
        return placeholders[(n - 1) % len(placeholders)]

    out = pattern.sub(sub, text)
    return (out, n) if n else (text, 0)
