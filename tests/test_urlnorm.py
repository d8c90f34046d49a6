"""URL normalization on hand-made edge cases and on every real target URL of the shared WARCs."""
from __future__ import annotations

import pytest

from tests.conftest import shared_path
from udfs.urlnorm import UrlNormOptions, normalize_url


@pytest.mark.parametrize("a, b", [
    ("HTTP://Example.COM/a/b", "http://example.com/a/b"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "http://example.com/a"),
    ("https://example.com/a", "http://example.com/a"),
    ("http://example.com/a#section-2", "http://example.com/a"),
    ("http://example.com/a/", "http://example.com/a"),
    ("http://example.com", "http://example.com/"),
    ("http://example.com/?", "http://example.com/"),
    ("http://example.com./a", "http://example.com/a"),
    ("http://user:pw@example.com/a", "http://example.com/a"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/%7euser/%41", "http://example.com/~user/A"),
    ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
    ("http://example.com/a?utm_source=x&id=3&utm_medium=y", "http://example.com/a?id=3"),
    ("http://example.com/a?fbclid=abc&gclid=def", "http://example.com/a"),
    ("http://example.com/a?UTM_Campaign=x&p=1", "http://example.com/a?p=1"),
    ("http://example.com/a?b=2&a=1", "http://example.com/a?a=1&b=2"),
    ("http://example.com/a?find=&q=1", "http://example.com/a?find=&q=1"),
    ("http://bücher.de/x", "http://xn--bcher-kva.de/x"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
])
def test_spellings_of_one_url_get_one_key(a, b):
    assert normalize_url(a) == b
    assert normalize_url(b) == b


def test_what_must_stay_distinct():
    assert normalize_url("http://example.com:8080/a") != normalize_url("http://example.com/a")
    assert normalize_url("http://example.com/a?id=1") != normalize_url("http://example.com/a?id=2")
    assert normalize_url("http://example.com/A") != normalize_url("http://example.com/a")  # paths are case-sensitive
    assert normalize_url("http://www.example.com/a") != normalize_url("http://example.com/a")
    assert normalize_url("ftp://example.com/a") != normalize_url("http://example.com/a")


def test_options():
    www = UrlNormOptions(strip_www=True)
    assert normalize_url("http://www.example.com/a", www) == normalize_url("http://example.com/a", www)
    strict = UrlNormOptions(ignore_scheme=False)
    assert normalize_url("https://example.com/a", strict) == "https://example.com/a"
    assert normalize_url("https://example.com:443/a", strict) == "https://example.com/a"
    keep_all = UrlNormOptions(drop_params=())
    assert normalize_url("http://e.com/?utm_source=x", keep_all) == "http://e.com/?utm_source=x"


@pytest.mark.parametrize("bad", [None, "", "   ", "not a url", "http://", "mailto:someone@example.com"])
def test_unusable_urls_are_none_or_themselves(bad):
    key = normalize_url(bad)
    assert key is None or key == bad.strip()


def test_bad_port_does_not_raise():
    assert normalize_url("http://example.com:99999/a") == "http://example.com:99999/a"


def _real_urls() -> list[str]:
    from warcio.archiveiterator import ArchiveIterator
    root = shared_path("warc")
    urls = []
    for f in sorted(root.glob("*.warc*")):
        with open(f, "rb") as fh:
            try:
                for rec in ArchiveIterator(fh):
                    u = rec.rec_headers.get_header("WARC-Target-URI")
                    if u and rec.rec_type in ("response", "resource", "request"):
                        urls.append(u.strip("<>"))
            except Exception:  # a truncated fixture: the URLs read so far are enough
                pass
    return urls


def _variants(url: str) -> list[str]:
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    path = "/" + path
    sep = "&" if "?" in path else "?"
    port = {"http": ":80", "https": ":443"}.get(scheme, "")
    out = [
        f"{scheme.upper()}://{host.upper()}{path}",
        f"{scheme}://{host}{port}{path}",
        f"{scheme}://{host}{path}#frag",
        f"{scheme}://{host}{path}{sep}utm_source=newsletter&utm_medium=email",
        f"{scheme}://{host}{path}{sep}fbclid=IwAR0abc",
        f"{'https' if scheme == 'http' else 'http'}://{host}{path}",
    ]
    if "?" not in path and "#" not in path:
        out.append(f"{scheme}://{host}{path.rstrip('/')}" if path.endswith("/") and path != "/"
                   else f"{scheme}://{host}{path}/")
    return out


def test_real_urls_from_warcs():
    urls = sorted(set(u for u in _real_urls() if u.startswith(("http://", "https://"))))
    assert len(urls) > 300, "the shared WARCs hold several hundred target URLs"
    keys = {u: normalize_url(u) for u in urls}
    for u, key in keys.items():
        assert key is not None and key.startswith("http://"), u
        assert normalize_url(key) == key, f"not idempotent: {u} -> {key} -> {normalize_url(key)}"
        for v in _variants(u):
            assert normalize_url(v) == key, f"{v} -> {normalize_url(v)} but {u} -> {key}"
    # distinct real URLs stay distinct unless they differ only by what is normalized away
    by_key: dict[str, list[str]] = {}
    for u, key in keys.items():
        by_key.setdefault(key, []).append(u)
    merged = {k: v for k, v in by_key.items() if len(v) > 1}
    for key, group in merged.items():
        bare = {g.split("://", 1)[1].split("#")[0].rstrip("/").lower() for g in group}
        assert len(bare) == 1, f"different pages got one key {key}: {group}"
    assert len(by_key) >= len(urls) - len(merged) * 2
