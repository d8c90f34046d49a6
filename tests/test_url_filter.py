"""URL filter on the real UT1 blocklist and LDNOOBW word lists: domains, URLs, words, curated sources."""
from __future__ import annotations

import dataclasses
import pickle

import pytest

from conftest import shared_path
from pipeline.core.config import UrlFilterConfig
from pipeline.core.storage import Storage, StorageError
from pipeline.stages.extract import load_url_filter
from udfs.url_filter import UrlFilter


@pytest.fixture(scope="module")
def url_filter() -> UrlFilter:
    cfg = UrlFilterConfig(blocklist_uri=str(shared_path("lists", "ut1")), words_uri=str(shared_path("lists", "ldnoobw")))
    return load_url_filter(cfg, Storage())


def test_gambling_domain_and_its_subdomains_are_dropped(url_filter):
    gambling = (shared_path("lists", "ut1", "gambling", "domains").read_text().splitlines())
    domain = "000-online-casino.com"
    assert domain in gambling
    v = url_filter.check(f"https://{domain}/")
    assert (v.reason, v.scores["domain"]) == ("url_blocklist_domain", domain)
    v = url_filter.check(f"http://www.poker.{domain.upper()}:8080/play?x=1")
    assert (v.reason, v.scores["domain"]) == ("url_blocklist_domain", domain)
    # a host that only ends with the same letters is not a subdomain
    assert url_filter.check(f"https://not{domain}/").keep


def test_clean_domains_are_kept(url_filter):
    for url in ("https://www.bbc.co.uk/news/world-europe-12345", "https://allenai.org/olmo",
                "https://creativecommons.org/licenses/by/4.0/", "http://example.com/how-to-kill-a-mockingbird-review"):
        v = url_filter.check(url)
        assert v.keep, (url, v)


def test_blocklisted_urls_match_as_path_prefixes(url_filter):
    # UT1 gambling/urls holds 'astrolabio.net/casino/' and 'top-lasvegas.com/en'
    assert url_filter.check("http://www.astrolabio.net/casino/roulette.html").reason == "url_blocklist_url"
    assert url_filter.check("https://astrolabio.net/casino").reason == "url_blocklist_url"
    assert url_filter.check("http://top-lasvegas.com/en/").reason == "url_blocklist_url"
    assert url_filter.check("http://top-lasvegas.com/english").keep
    assert url_filter.check("http://astrolabio.net/").keep


def test_url_words(url_filter):
    v = url_filter.check("https://example.com/videos/free-PORNvideos")
    assert (v.reason, v.scores["word"]) == ("url_strict_word", "porn")       # strict: any substring
    v = url_filter.check("https://example.com/tags/bdsm/")
    assert (v.reason, v.scores["word"]) == ("url_hard_word", "bdsm")         # hard: a whole word from ldnoobw/en
    assert url_filter.check("https://example.com/tags/bdsmith").keep          # ... and only a whole word
    v = url_filter.check("https://example.com/2-girls-1-cup.html")
    assert (v.reason, v.scores["word"]) == ("url_hard_word", "2 girls 1 cup")  # phrases match as word runs
    # soft: two distinct soft words drop, one does not, the same one twice does not
    assert url_filter.check("https://example.com/health/sex-education").keep
    assert url_filter.check("https://example.com/sex/sex-tips").keep
    v = url_filter.check("https://example.com/sex-education/nude-art")
    assert (v.reason, v.scores["words"]) == ("url_soft_words", ["nude", "sex"])


def test_other_languages_word_lists():
    cfg = UrlFilterConfig(words_uri=str(shared_path("lists", "ldnoobw")), word_languages=["en", "de"], strict_words=[])
    f = load_url_filter(cfg, Storage())
    assert f.check("https://example.de/arschloch-des-tages").reason == "url_hard_word"
    assert load_url_filter(dataclasses.replace(cfg, word_languages=["en"]), Storage()).check(
        "https://example.de/arschloch-des-tages").keep


def test_curated_sources_are_left_out_for_later(url_filter):
    for url, domain in (("https://en.wikipedia.org/wiki/Toulouse", "wikipedia.org"),
                        ("https://arxiv.org/abs/2306.01116", "arxiv.org"),
                        ("https://github.com/allenai/dolma", "github.com"),
                        ("https://math.stackexchange.com/questions/1", "stackexchange.com"),
                        ("https://old.reddit.com/r/x", "reddit.com")):
        v = url_filter.check(url)
        assert (v.reason, v.scores["domain"]) == ("url_curated_source", domain)
    assert url_filter.check("https://wikipedia.org.example.com/").keep


def test_filter_is_small_and_picklable_for_broadcast(url_filter):
    blob = pickle.dumps(url_filter)
    assert len(blob) < 8_000_000
    clone = pickle.loads(blob)
    assert clone == url_filter
    assert clone.check("https://www.000-online-casino.com/").reason == "url_blocklist_domain"
    assert len(url_filter.domains) > 30_000       # gambling/domains alone holds 32k entries


def test_lists_load_from_s3(s3_server):
    bucket = s3_server.make_bucket("lists")
    client = s3_server.client()
    client.put_object(Bucket="lists", Key="ut1/gambling/domains",
                      Body=shared_path("lists", "ut1", "gambling", "domains").read_bytes())
    client.put_object(Bucket="lists", Key="words/en", Body=shared_path("lists", "ldnoobw", "en").read_bytes())
    cfg = UrlFilterConfig(blocklist_uri=f"{bucket}/ut1", blocklist_categories=["gambling"], words_uri=f"{bucket}/words")
    f = load_url_filter(cfg, Storage())
    assert f.check("https://sub.000-online-casino.com/").reason == "url_blocklist_domain"
    assert f.check("https://example.com/bdsm").reason == "url_hard_word"
    assert f.check("https://example.com/").keep


def test_missing_category_or_language_fails_loudly():
    root = str(shared_path("lists", "ut1"))
    with pytest.raises(StorageError, match="no_such_category"):
        load_url_filter(UrlFilterConfig(blocklist_uri=root, blocklist_categories=["no_such_category"]), Storage())
    with pytest.raises(StorageError, match="xx"):
        load_url_filter(UrlFilterConfig(words_uri=str(shared_path("lists", "ldnoobw")), word_languages=["xx"]),
                        Storage())


def test_urls_without_scheme_or_empty():
    f = UrlFilter(frozenset({"casino.com"}), frozenset(), (), frozenset(), frozenset(), 2, frozenset())
    assert f.check("casino.com/page").reason == "url_blocklist_domain"
    assert f.check("").keep and f.check(None).keep
