"""PII redaction: precision on real pages (nothing but addresses changes), recall on planted addresses, and the
filter stage counting what it replaced without keeping or removing a document for it."""
from __future__ import annotations

import html
import json
import re
import typing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.config import ConfigError, PiiConfig, load_config
from pipeline.core.dataset import read_dataset, read_manifest
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from tests.conftest import shared_path
from udfs.pii import EMAIL_PLACEHOLDERS, IPV4_PLACEHOLDERS, IPV6_PLACEHOLDERS, KINDS, PHONE_PLACEHOLDERS, redact

ALL = list(KINDS)


# --------------------------------------------------------------------------- real pages

def _news() -> dict[str, str]:
    rows = [json.loads(line) for line in shared_path("groundtruth", "news-articles-181.jsonl").open(encoding="utf-8")]
    return {r["url"]: r["article_body"] for r in rows}


def _readability(name: str, file: str = "expected.html") -> str:
    raw = shared_path("extraction", "readability-test-pages", name, file).read_text(encoding="utf-8", errors="replace")
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def _readability_all() -> dict[str, str]:
    root = shared_path("extraction", "readability-test-pages")
    return {d.name: _readability(d.name) for d in sorted(root.iterdir())}


def test_real_news_articles_lose_exactly_their_email_addresses():
    """181 real article bodies (8 languages): the 4 e-mail addresses go, nothing else changes; no IP addresses
    or phone-like numbers there but one real US number (Signal: 347-966-3806), and a German one in +49 form."""
    news = _news()
    total = {k: 0 for k in ALL}
    changed = {}
    for url, text in news.items():
        new, counts = redact(text, ALL)
        for k, n in counts.items():
            total[k] += n
        if new != text:
            changed[url] = new
    assert total == {"email": 4, "ip": 0, "phone": 2}
    assert len(changed) == 5
    gone = ["thekian1@entermedia.co.kr", "pillgoo9@gmail.com", "info@givewell.org", "louise_matsakis@wired.com",
            "347-966-3806", "+49 (0)40 890 85-433"]
    joined = "\n".join(changed.values())
    for s in gone:
        assert s not in joined
    # outside the replaced spans, the changed articles are unchanged
    for url, new in changed.items():
        old = news[url]
        for s in gone:
            old = old.replace(s, "\0")
        for p in EMAIL_PLACEHOLDERS + PHONE_PLACEHOLDERS:
            new = new.replace(p, "\0")
        assert new == old


@pytest.mark.parametrize("source, name, kept", [
    ("news", "http://jeongdongtheater.com/blog/2018/10/12/", "2018.04.05"),          # a dotted date
    ("news", "https://blog.comwrap.com/", "01.01.2019"),                              # a German date
    ("news", "http://jeongdongtheater.com/blog/2018/10/12/", "02-751-1500"),          # a Korean phone: not matched
    ("news", "https://www.ctpost.com/", "$44,000"),                                   # prices
    ("news", "https://www.latimes.com/entertainment-arts/", "$6.99-a-month"),
    ("news", "https://www.ascom.com/", "28: 685-690"),                                # a page range
    ("news", "https://www.mysanantonio.com/", "112-107"),                             # a score
    ("news", "http://www.theparadigmng.com/", "(@NGRSenate)"),                       # a handle, not an address
    ("readability", "ars-1", "Minecraft versions as of 1.8.3"),                      # versions
    ("readability", "lwn-1", "version 1.6.0"),
    ("readability", "keep-tabular-data", "2019-02-15"),                              # ISO date
    ("readability", "toc-missing", "2020-08-01 18:00:00+00"),                       # a timestamp (colons)
    ("readability", "tmz-1", "2/26/2015 7:11 AM"),
    ("readability", "wikipedia-2", "9780195584516.001.0001"),                        # a DOI
    ("readability", "wikipedia-2", "41.283°S 174.450°E"),                            # coordinates
    ("readability", "001", 'expect(cow.name).to.equal("Anon cow");'),               # code
    ("readability-source", "quanta-1", "All in One SEO Pack 2.3.11.4"),             # a four-part version
    ("readability-source", "yahoo-3", "dev_build:1.0.0.18_001"),
])
def test_real_pages_keep_dates_versions_prices_and_code(source, name, kept):
    if source == "news":
        texts = [t for url, t in _news().items() if url.startswith(name)]
    elif source == "readability":
        texts = [_readability(name)]
    else:
        texts = [_readability(name, "source.html")]
    text = next(t for t in texts if kept in t)
    new, _ = redact(text, ALL)
    assert kept in new


def test_real_pages_whole_corpus_counts():
    """All 130 readability test pages' expected text: the exact addresses found there, nothing more."""
    total, found = {k: 0 for k in ALL}, []
    for name, text in _readability_all().items():
        new, counts = redact(text, ALL)
        for k, n in counts.items():
            total[k] += n
        if new != text:
            found.append(name)
    assert total == {"email": 5, "ip": 0, "phone": 0}
    assert found == ["breitbart", "iab-1", "ietf-1", "medium-1"]


def test_a_real_page_with_real_ip_addresses():
    """Common Crawl's CCBot FAQ names its old crawler addresses: public, so replaced; the page's prose stays."""
    from bench.warcs import html_pages
    import trafilatura
    pages = html_pages(shared_path("warc", "dolma-sample-0000.warc.gz")) + \
        html_pages(shared_path("warc", "dolma-sample-0001.warc.gz"))
    texts = [trafilatura.extract(body) or "" for _, body, _ in pages]
    text = next(t for t in texts if "38.107.191.66" in t)
    new, counts = redact(text)
    assert counts == {"email": 0, "ip": 2}
    assert "38.107.191" not in new and "Older versions used the IPs 22.214.171.124 through 126.96.36.199." in new


# --------------------------------------------------------------------------- planted values

PLANTED_EMAILS = ["john.smith@gmail.com", "Jane.Doe@Example-Mail.co.uk", "a+tag@sub.domain.org",
                  "x_y-z@company.io", "ceo@startup.ai", "info@münchen.de".replace("ü", "u"), "user@[93.184.216.34]"]
PLANTED_IPV4 = ["8.26.56.26", "93.184.216.34", "151.101.1.69", "172.217.16.142", "203.115.3.1", "45.33.32.156"]
PLANTED_IPV6 = ["2a00:1450:4001:81d::200e", "2606:4700:4700::1111", "2001:4860:4860:0:0:0:0:8888"]
PRIVATE = ["10.1.2.3", "192.168.0.10", "127.0.0.1", "169.254.10.20", "172.16.5.4", "100.64.1.2", "192.0.2.15",
           "0.0.0.0", "255.255.255.255", "::1", "fe80::1ff:fe23:4567:890a", "2001:db8::abcd", "fd12:3456:789a::1"]
PLANTED_PHONES = ["+44 20 7946 0958", "+1 (646) 613-4100", "(212) 555-0143", "415-561-6767", "+33 1 23 45 67 89",
                  "+4930123456"]


def _planted_doc(values: list[str]) -> str:
    paras = [p for t in list(_news().values())[:40] for p in t.split("\n") if len(p.split()) > 12]
    forms = ["Contact: {}.", "write to {} today", "({})", "address {}, then", "<{}>", "[{}]", "- {}\n"]
    out = []
    for i, v in enumerate(values):
        out.append(paras[i % len(paras)])
        out.append(forms[i % len(forms)].format(v))
    return "\n".join(out)


def test_planted_emails_and_public_ips_are_all_replaced_and_private_ones_kept():
    values = PLANTED_EMAILS + PLANTED_IPV4 + PLANTED_IPV6 + PRIVATE
    doc = _planted_doc(values)
    new, counts = redact(doc)
    assert counts == {"email": len(PLANTED_EMAILS), "ip": len(PLANTED_IPV4) + len(PLANTED_IPV6)}
    for v in PLANTED_EMAILS + PLANTED_IPV4 + PLANTED_IPV6:
        assert v not in new, v
    for v in PRIVATE:
        assert v in new, v
    # placeholders in turn, by position: the first e-mail gets the first placeholder
    assert new.count(EMAIL_PLACEHOLDERS[0]) == 4 and new.count(EMAIL_PLACEHOLDERS[1]) == 3
    assert sum(new.count(p) for p in IPV4_PLACEHOLDERS) == len(PLANTED_IPV4)
    assert sum(new.count(p) for p in IPV6_PLACEHOLDERS) == len(PLANTED_IPV6)
    assert redact(new) == (new, {"email": 0, "ip": 0})       # placeholders are not found again: redacting is idempotent


def test_planted_phone_numbers_when_asked():
    doc = _planted_doc(PLANTED_PHONES)
    assert redact(doc) == (doc, {"email": 0, "ip": 0})    # phones are off by default
    new, counts = redact(doc, ["phone"])
    assert counts == {"phone": len(PLANTED_PHONES)}
    for v in PLANTED_PHONES:
        assert v not in new, v
    assert new.count(PHONE_PLACEHOLDERS[0]) == len(PLANTED_PHONES)
    assert redact(new, ALL)[1] == {"email": 0, "ip": 0, "phone": 0}


@pytest.mark.parametrize("text", [
    "logo@2x.png and icon@3x.webp",                       # image file names, not addresses
    "npm i lodash@4.17.21 react@18.2.0",                  # package versions
    "follow @nasa and @esa, #space",                       # handles
    "version 1.2.3.4, v8.8.8.8, Section 4.1.2.3, build 5.0.0.1",   # version and section numbers in context
    "the OID 1.3.6.1.4.1.311 and Windows 10.0.19041.1",   # longer dotted numbers
    "Pack 2.3.11.4 by Michael",                           # small parts, no address word: a version
    "at 12:30:45 on 2024-03-15, std::vector<int>, a::b::c, dead::beef",  # times, C++ scopes, reserved IPv6
    "ISBN 978-3-16-148410-0, SSN-like 123-45-6789, tel 02-751-1500, 1-800-FLOWERS",
    "costs $1,234.56 or €1.200.000,00 or 1.234.567.890 units; GDP +2.5% to +3.1%",
    "c=20>a?c+((j&h|~j&g)+1518500249):40>a; o=i+(n^a^r)+341275144,i; 2+2=4",   # minified JS (wikia, nytimes)
    "01.02.03.04 and 8.8.8.08",                           # leading zeros: not an address
])
def test_things_that_are_not_pii(text):
    assert redact(text, ALL)[0] == text


def test_address_words_make_small_quads_addresses():
    new, counts = redact("Use the DNS server 8.8.8.8 or 1.1.1.1; ping 9.9.9.9 and IP: 4.2.2.2")
    assert counts["ip"] == 4 and "8.8.8.8" not in new and "9.9.9.9" not in new


def test_ours_against_datatrove_piiformatter_on_real_pages():
    """datatrove 0.10.1's PIIFormatter (FineWeb's) on every real page text here: the same e-mail and IP matches,
    except its IPv4 pattern reading addresses out of SVG path numbers and four-part versions."""
    from datatrove.pipeline.formatters.pii import PIIFormatter
    f = PIIFormatter()
    docs = {f"news:{u}": t for u, t in _news().items()}
    root = shared_path("extraction", "readability-test-pages")
    for d in sorted(root.iterdir()):
        docs[f"rd:{d.name}"] = _readability(d.name)
        docs[f"src:{d.name}"] = _readability(d.name, "source.html")
    differ = {}
    for name, text in docs.items():
        emails = [m.group(0) for m in f.emails_replacer.regex.finditer(text)]
        ips = [m.group(0) for m in f.ip_replacer.regex.finditer(text) if f.ip_replacer.validator(m.group(0))]
        _, ours = redact(text)
        if ours != {"email": len(emails), "ip": len(ips)}:
            differ[name] = (ips, ours["ip"])
        assert ours["email"] == len(emails), name
    assert differ == {
        "src:quanta-1": (["2.3.11.4"], 0),                                  # "All in One SEO Pack 2.3.11.4"
        "src:yahoo-1": (["104.131.127.216", "12.122.237.185", "2.25.23.77"], 1),  # the last two: SVG path data
        "src:yahoo-2": (["12.122.237.185", "2.25.23.77"], 0),
        "src:yahoo-3": (["1.0.0.18"], 0),                                  # "dev_build:1.0.0.18_001"
    }


def test_emails_in_any_case_and_file_names_as_datatrove_does_not():
    from datatrove.pipeline.formatters.pii import PIIFormatter
    text = "Write to John.Doe@Example.com today, see logo@2x.png."
    assert PIIFormatter().format(text) == "Write to email@example.com today, see firstname.lastname@example.org."
    assert redact(text) == ("Write to email@example.com today, see logo@2x.png.", {"email": 1, "ip": 0})


def test_kinds_match_the_config_and_config_errors_are_clear():
    assert typing.get_args(typing.get_type_hints(PiiConfig)["kinds"])[0].__args__ == KINDS
    assert load_config(None, []).filter.pii == PiiConfig(enabled=True, kinds=["email", "ip"])
    assert load_config("c4", []).filter.pii.enabled is False   # C4 published no PII step
    assert load_config("fineweb", []).filter.pii.enabled is True
    with pytest.raises(ConfigError, match=r"filter.pii.kinds\[1\]: 'fax' is not allowed; allowed values: email, ip, phone"):
        load_config(None, ["filter.pii.kinds=[email,fax]"])
    with pytest.raises(ConfigError, match="filter.pii.kinds: empty while filter.pii.enabled is true"):
        load_config(None, ["filter.pii.kinds=[]"])
    with pytest.raises(ConfigError, match="filter.pii.kinds: ip listed twice"):
        load_config(None, ["filter.pii.kinds=[ip,email,ip]"])
    assert load_config(None, ["filter.pii.enabled=false", "filter.pii.kinds=[]"]).filter.pii.enabled is False


# --------------------------------------------------------------------------- the filter stage

BODY = (
    "The town council met on Tuesday evening to discuss the future of the old railway station, which has stood "
    "empty for more than a decade. Several residents spoke in favour of turning the building into a library and "
    "community centre, while others argued that the cost of the repairs would be far too high for a town of "
    "this size. After two hours of debate, the council agreed to commission a survey of the roof and the "
    "foundations, and the results are expected in the spring.")


def _stage_input(root) -> tuple[str, list[tuple]]:
    rows = [
        ("k1", BODY + " Questions go to the clerk at clerk@towncouncil.gov.uk or Mary.Jones@Gmail.com."),
        ("k2", BODY + " The council's web server at 93.184.216.34 and 2606:4700:4700::1111 was down; "
                      "the office router 192.168.1.1 was not. Call +44 20 7946 0958."),
        ("k3", BODY + " Version 1.2.3.4 of the survey software ran on the 10.0.0.0/8 network."),
        ("r1", "Too short, with an address: someone@example.net"),            # removed: no redaction counted
        ("r2", None),
    ]
    root.mkdir()
    pq.write_table(pa.table({"id": [r[0] for r in rows], "url": [f"https://t.example.org/{r[0]}" for r in rows],
                             "text": [r[1] for r in rows], "lang": ["en"] * len(rows),
                             "text_chars": [len(r[1] or "") for r in rows]}), str(root / "part-0.parquet"))
    return str(root), rows


def test_filter_stage_counts_pii_in_the_manifest_and_keeps_document_counts(spark, cfg_factory, tmp_path):
    src, rows = _stage_input(tmp_path / "in")
    off = run_stage(cfg_factory("filter.pii.enabled=false"), "filter", src, str(tmp_path / "off"), spark=spark)
    on = run_stage(cfg_factory("filter.pii.kinds=[email,ip,phone]"), "filter", src, str(tmp_path / "on"), spark=spark)

    assert on["counts"] == off["counts"] == {"in": 5, "kept": 3, "removed": {"gopher_top_3_gram": 1, "gopher_empty": 1}}
    assert on["counts"]["in"] == on["counts"]["kept"] + sum(on["counts"]["removed"].values())
    assert on["stats"]["pii"] == {"kinds": ["email", "ip", "phone"], "email": 2, "ip": 2, "phone": 1,
                                  "documents_redacted": 2}
    assert "pii" not in off["stats"] and not any(k.startswith("pii_") for k in on["stats"])
    assert read_manifest(Storage(), str(tmp_path / "on"))["stats"]["pii"] == on["stats"]["pii"]
    assert on["logic_version"] == 4 and on["config_hash"] != off["config_hash"]

    kept = {r["id"]: r for r in read_dataset(Storage(), str(tmp_path / "on")).to_pylist()}
    plain = {r["id"]: r for r in read_dataset(Storage(), str(tmp_path / "off")).to_pylist()}
    assert kept["k1"]["text"].endswith("clerk at email@example.com or firstname.lastname@example.org.")
    assert "93.184.216.34" not in kept["k2"]["text"] and "4700::1111" not in kept["k2"]["text"]
    assert "router 192.168.1.1 was not. Call 555-555-0100." in kept["k2"]["text"]
    assert kept["k3"]["text"] == plain["k3"]["text"] == rows[2][1]          # a version and a private range stay
    assert all(r["text_chars"] == len(r["text"]) for r in kept.values())
    for k in ("k1", "k2", "k3"):                     # scores are the filters', measured before redaction
        assert kept[k]["gopher_n_words"] == plain[k]["gopher_n_words"]
