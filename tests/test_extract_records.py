"""Per-record extraction logic on plain values: which records are kept, decoding, ids, language verdicts."""
import pytest

from udfs.decode import DecodeError, clean_text, decode_payload, looks_binary, normalize_charset, sniff_charset
from udfs.extract import ExtractSettings, ExtractTimeout, doc_id, domain_of, extract_text, record_reason, time_limit
from udfs.langid import identify, language_verdict, load_model

MAX = 1000


@pytest.mark.parametrize("args, reason", [
    (("dns:a.com", None, "text/dns", None, 10), "not_http"),
    (("http://a.com/", None, None, None, 10), "bad_http_headers"),
    (("http://a.com/", 404, "text/html", None, 10), "http_status"),
    (("http://a.com/", 301, "text/html", None, 10), "http_status"),
    (("http://a.com/x.png", 200, "image/png", "image/png", 10), "not_html"),
    (("http://a.com/x.txt", 200, "text/plain", None, 10), "not_html"),
    (("http://a.com/", 200, "text/html; charset=utf-8", None, MAX + 1), "too_large"),
    (("http://a.com/", 200, "text/html; charset=utf-8", None, MAX), None),
    (("https://a.com/", 200, "application/xhtml+xml", None, 10), None),
    (("https://a.com/", 200, "application/octet-stream", "text/html", 10), None),
    (("https://a.com/", 200, None, None, 10), None),  # no type at all: sniffed later
])
def test_record_reason(args, reason):
    assert record_reason(*args, max_bytes=MAX) == reason


def test_decode_declared_charset_and_meta():
    text = "Grüße aus Köln – “quoted”"
    assert decode_payload(text.encode("cp1252"), "text/html; charset=windows-1252") == (text, "cp1252")
    # ISO-8859-1 labels decode as windows-1252, as browsers do (curly quotes survive)
    assert decode_payload(text.encode("cp1252"), "text/html; charset=ISO-8859-1")[0] == text
    ja = "<html><head><meta charset=\"EUC-JP\"></head><body>日本語のページです</body></html>"
    out, enc = decode_payload(ja.encode("euc_jp"), "text/html")
    assert enc == "euc_jp" and "日本語のページです" in out


def test_decode_wrong_declared_charset_falls_back():
    text = "<p>Ceci est une phrase française avec des accents: é à ç ù, répétée.</p>" * 5
    out, enc = decode_payload(text.encode("utf-8"), "text/html; charset=shift_jis")
    assert out == text and enc == "utf-8"


def test_decode_no_charset_detects():
    text = "<p>Это русский текст страницы без объявленной кодировки, достаточно длинный для определения.</p>" * 3
    out, _ = decode_payload(text.encode("cp1251"), None)
    assert "русский текст" in out


def test_decode_error_for_undecodable():
    with pytest.raises(DecodeError):
        decode_payload(bytes(range(128, 256)) * 50, "text/html; charset=utf-8")


def test_charset_helpers():
    assert normalize_charset("LATIN1") == "cp1252"
    assert normalize_charset("no-such-charset") is None
    assert sniff_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">') == "shift_jis"
    assert sniff_charset(b"<html><body>") is None


def test_looks_binary_and_clean_text():
    assert looks_binary(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert looks_binary(bytes(range(0, 32)) * 100)
    assert not looks_binary("<html><body>plain text é</body></html>".encode())
    assert clean_text("a\x00b\ud800c") == "abc"


def test_doc_id_is_stable_and_falls_back_to_url_and_date():
    rid = "<urn:uuid:3f2b5c1e-0000-4000-8000-000000000001>"
    assert doc_id(rid, "http://a", "d") == doc_id(rid, "http://b", "e")
    assert len(doc_id(rid, None, None)) == 32
    assert doc_id(None, "http://a/", "2024") == doc_id(None, "http://a/", "2024") != doc_id(None, "http://a/", "2025")


def test_domain_of():
    assert domain_of("https://WWW.Example.COM:8080/a?b") == "www.example.com"
    assert domain_of("not a url") is None
    assert domain_of("http://[bad") is None


def test_extract_text_gets_main_text_without_boilerplate():
    body = " ".join(f"This is sentence number {i} of a long and informative article about rivers." for i in range(40))
    html = (f"<html><head><title>T</title></head><body><nav><a href='/'>Home</a> | <a href='/about'>About us</a></nav>"
            f"<article><h1>Rivers</h1><p>{body}</p></article><footer>Copyright 2024 Example Corp. All rights reserved."
            f"</footer></body></html>")
    text = extract_text(html, "http://example.com/rivers", ExtractSettings())
    assert "sentence number 39" in text
    assert "All rights reserved" not in text


def test_time_limit_raises():
    import time
    with pytest.raises(ExtractTimeout):
        with time_limit(0.05):
            time.sleep(1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the first, swallowed raise
def test_time_limit_holds_when_the_alarm_lands_in_a_finalizer():
    """CI on 9eb78b6: the alarm fired while a py4j weakref callback ran; Python printed "Exception ignored" and the
    page ran on to the end. An exception raised in a finalizer is swallowed, so the limit must fire again."""
    import gc
    import time
    import weakref

    class Held:
        pass

    def slow_callback(_ref):
        time.sleep(0.2)  # the alarm lands here, inside a callback whose exceptions Python swallows

    started = time.monotonic()
    with pytest.raises(ExtractTimeout):
        with time_limit(0.05):
            held = Held()
            ref = weakref.ref(held, slow_callback)  # noqa: F841
            del held
            gc.collect()
            while time.monotonic() - started < 3:  # the page goes on in plain Python
                sum(range(1000))
    assert time.monotonic() - started < 1
    time.sleep(0.1)  # disarmed after the block: no stray alarm follows


def test_time_limit_is_disarmed_when_the_limit_passes_in_the_blocks_last_step(monkeypatch):
    """A limit that passes during one long C call at the end of the block is acted on as the context manager's exit
    starts, and a re-fire may then be acted on as the handler itself starts (two reviews of 7cd03c4): the exit must
    still stop the re-firing timer and put the old handler back, or stray ExtractTimeouts hit the code after the block
    (in the stage: the record's drop, the next records, the file marked unreadable)."""
    import signal
    import time

    import udfs.extract
    monkeypatch.setattr(udfs.extract, "REFIRE_S", 0.0002)  # re-fires close together: the races become likely
    big = list(range(500_000))
    before = signal.getsignal(signal.SIGALRM)

    def page():
        with time_limit(0.001):
            x = big * 4  # noqa: F841 - one long C operation, no signal check inside it
        return "done"
    for i in range(100):
        caught = None
        try:
            page()
        except ExtractTimeout as e:  # kept alive (and so the block's frames), as the stage does while it drops
            caught = e
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), (i, caught)
        assert signal.getsignal(signal.SIGALRM) is before
    started = time.monotonic()
    while time.monotonic() - started < 0.2:  # raises if a stray alarm still fires
        sum(range(1000))


def test_language_id_and_verdict():
    model = load_model(None)
    assert identify("Der schnelle braune Fuchs springt über den faulen Hund und läuft weiter.", model)[0] == "de"
    lang, score = identify("The quick brown fox jumps over the lazy dog\nand runs away into the forest.", model)
    assert lang == "en" and score > 0.65
    assert language_verdict("en", 0.9, ["en"], 0.65).keep
    assert language_verdict("en", 0.6499, ["en"], 0.65).reason == "lang_low_score"
    assert language_verdict("en", 0.65, ["en"], 0.65).keep
    assert language_verdict("de", 0.99, ["en"], 0.65).reason == "lang_mismatch"
