"""WARC records -> documents: which records are kept, how text is extracted, and why others are not.

``process_warc`` streams one WARC file record by record (warcio). Records other than HTTP responses
(warcinfo, request, metadata, revisit) are not documents: they are counted by type in the stats and
never reach the sink. Every response goes to the sink as kept (a document row) or dropped (a reason
and the scores behind it). A broken file stops the loop, keeps what was read, and reports the error;
a broken record is counted and the loop goes on.
"""
from __future__ import annotations

import hashlib
import signal
import threading
import time
from codecs import BOM_UTF8
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Protocol
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

from udfs.decode import DecodeError, clean_text, decode_payload, looks_binary

HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml+html")


class Sink(Protocol):
    def keep(self, row: dict) -> None: ...
    def drop(self, reason: str, doc_id: str, url: str | None = None, details: dict | None = None,
             text: str | None = None) -> None: ...
    def fail(self, error: str) -> None: ...


@dataclass(frozen=True)
class ExtractSettings:
    """The extractor, trafilatura and safety settings of the extract stage (plain values, picklable)."""
    max_record_bytes: int = 10_000_000
    timeout_s: float = 10.0
    min_text_chars: int = 1
    favor_precision: bool = False
    favor_recall: bool = True
    include_comments: bool = False
    include_tables: bool = True
    fallback: bool = False
    deduplicate: bool = False
    extractor: str = "trafilatura+resiliparse"  # udfs.main_text.EXTRACTORS
    second_opinion_below_chars: int = 800
    second_opinion_factor: float = 1.5
    boilerplate_lines: bool = True


class ExtractTimeout(Exception):
    """Extraction of one page ran past the per-page limit."""


# after the limit, the alarm fires again this often until ExtractTimeout leaves the page's code: an exception raised
# while a finalizer or weakref callback runs (py4j's, lxml's) is printed as "Exception ignored" and swallowed
REFIRE_S = 0.02


class time_limit:
    """``with time_limit(seconds):`` raises ExtractTimeout in the block after ``seconds`` (SIGALRM; only in the main
    thread, as Spark's Python workers run tasks; elsewhere no limit).

    Past the limit the alarm repeats every REFIRE_S until the exception reaches the block, so a raise that lands in a
    finalizer (swallowed by Python) does not let the page run on unbounded. An alarm acted on in ``__enter__`` or
    ``__exit__`` raises nothing: Python acts on a signal that came during a long C call when the next function
    starts, which may be the exit; raising there would skip the disarming and leave the timer firing into the code
    after the block. In ``__enter__`` the next alarm, REFIRE_S later, lands in the block."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.armed, self._old = seconds, False, None

    def _alarm(self, signum, frame) -> None:
        while frame is not None and frame.f_code is _ALARM_CODE:  # a re-fire acted on as this handler starts
            frame = frame.f_back
        if frame is not None and frame.f_code in _QUIET_CODE:
            return
        if self.armed:
            raise ExtractTimeout()

    def __enter__(self) -> "time_limit":
        if threading.current_thread() is threading.main_thread():
            self.armed = True
            self._old = signal.signal(signal.SIGALRM, self._alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, REFIRE_S)
        return self

    def __exit__(self, *exc) -> None:
        if self.armed:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)


_QUIET_CODE = (time_limit.__enter__.__code__, time_limit.__exit__.__code__)
_ALARM_CODE = time_limit._alarm.__code__


def doc_id(record_id: str | None, url: str | None, date: str | None) -> str:
    """Stable id: from WARC-Record-ID, else from URL + date (128 bits, hex)."""
    key = record_id.strip() if record_id else f"{url}|{date}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def domain_of(url: str | None) -> str | None:
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def mime_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def record_reason(url: str | None, status: int | None, content_type: str | None,
                  payload_type: str | None, length: int | None, max_bytes: int) -> str | None:
    """Why a response record is not a candidate page (None: extract it). Cheap: headers only."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return "not_http"
    if status is None:
        return "bad_http_headers"
    if status != 200:
        return "http_status"
    mime = mime_of(content_type)
    identified = mime_of(payload_type)
    if mime not in HTML_TYPES and identified not in HTML_TYPES and not (mime == "" and identified == ""):
        return "not_html"
    if length is not None and length > max_bytes:
        return "too_large"
    return None


def extract_text(html: str, url: str | None, s: ExtractSettings, utf8: bytes | None = None) -> str:
    """Main text (udfs.main_text; '' when none is found) within the per-page limit. May raise ExtractTimeout.
    ``utf8``: html's UTF-8 bytes when the caller has them."""
    from udfs.main_text import main_text
    with time_limit(s.timeout_s):
        return main_text(html, url, s, utf8)


def _http_status(http_headers) -> int | None:
    if http_headers is None:
        return None
    try:
        return int(http_headers.get_statuscode())
    except (TypeError, ValueError):
        return None


class NotAWarcError(ValueError):
    """The file does not start like a WARC (or ARC) file."""


def _check_first_record(record, warc_file: str) -> None:
    """warcio reads almost anything as an ARC record; a real ARC file starts with a filedesc:// record."""
    if record.format == "arc" and not (record.rec_headers.get_header("uri") or "").startswith("filedesc://"):
        raise NotAWarcError(f"{warc_file}: not a WARC or ARC file (no WARC/ header, no filedesc:// record)")


class _BrotliDecompressor:
    """warcio expects zlib's decompressor interface; brotli >= 1.1 offers ``process`` instead."""

    def __init__(self) -> None:
        import brotli
        self._d = brotli.Decompressor()
        self.unused_data = None

    def decompress(self, data: bytes) -> bytes:
        return self._d.process(data)

    def flush(self) -> bytes:
        return b""


_HAVE_ISAL = find_spec("isal") is not None  # looked up once per process, not per WARC file


def _isal_gzip():
    from isal import isal_zlib
    return isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)


def _use_decompressors() -> None:
    """warcio's decompressors: brotli's through its zlib-like interface, and ISA-L's inflate (``isal``) for gzip,
    the WARC's own members and gzip-encoded bodies, where it installs: the same bytes, -0.16 to -0.37 ms of a
    ~10.3 ms page in the whole per-file path (bench/RESULTS.md). Without it, zlib's."""
    from warcio.bufferedreaders import BufferedReader
    BufferedReader.DECOMPRESSORS["br"] = _BrotliDecompressor
    if _HAVE_ISAL:
        BufferedReader.DECOMPRESSORS["gzip"] = _isal_gzip


class DamagedGzipError(ValueError):
    """A gzip member of the WARC does not decompress (bad CRC, corrupt deflate data): the file is damaged there."""


class _CheckedIterator(ArchiveIterator):
    """warcio's ArchiveIterator that notices records cut short (truncated file or lying Content-Length), a gzip
    member that fails to decompress (warcio prints the zlib error and ends the file as if it were complete), and a
    file that ends inside a gzip member. A file cut exactly between two members looks like a shorter, whole file:
    nothing in the WARC format tells them apart."""
    INC_RECORD = ""  # warcio prints a warning per such record; we report the file instead
    truncated = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        reader = self.reader
        fallback = reader._decompress  # warcio's: on the first bytes of the file, "not gzip" means plain WARC

        def decompress(data: bytes) -> bytes:
            if reader.decompressor is not None and data and reader.num_read:
                try:
                    return reader.decompressor.decompress(data)
                except Exception as e:  # noqa: BLE001 - zlib.error and friends
                    raise DamagedGzipError(f"a gzip member does not decompress after {reader.num_read:,} bytes of "
                                           f"WARC data ({e})") from None
            return fallback(data)
        reader._decompress = decompress

    def close(self):
        dec = self.reader.decompressor if self.reader is not None else None
        if dec is not None and getattr(dec, "eof", True) is False and not self.truncated:
            self.truncated = "the file ends inside a gzip member (cut short)"
        super().close()

    def read_to_end(self, record=None):
        rec = self.record
        super().read_to_end(record)
        left = getattr(getattr(rec, "raw_stream", None), "limit", 0) if rec is not None else 0
        if left and not self.truncated:
            uri = rec.rec_headers.get_header("WARC-Target-URI")
            self.truncated = f"record {uri} ends {left} bytes before its Content-Length"


def process_warc(stream, warc_file: str, s: ExtractSettings, sink: Sink, url_filter=None,
                 lang_model=None, languages: tuple[str, ...] = (), min_lang_score: float = 0.0,
                 prescreen: bool = False) -> dict:
    """Every response record of one WARC stream to the sink; returns stats (``records``: all records read,
    ``records_by_type``: {WARC-Type: n}), with ``error`` when the file is broken. ``prescreen``: pages confidently in another language are dropped before extraction (``udfs.prescreen``)."""
    _use_decompressors()
    stats = {"records": 0, "records_by_type": {}, "extract_seconds": 0.0, "html_bytes": 0, "prescreen_seconds": 0.0, "prescreen_dropped": 0}
    prescreen = bool(prescreen and lang_model is not None and languages)
    it = _CheckedIterator(stream, check_digests=False)
    try:
        for record in it:
            if stats["records"] == 0:
                _check_first_record(record, warc_file)
            stats["records"] += 1
            by_type = stats["records_by_type"]
            by_type[record.rec_type] = by_type.get(record.rec_type, 0) + 1
            if record.rec_type != "response":
                continue  # warcinfo, request, metadata, revisit: WARC bookkeeping, not documents
            _process_record(record, warc_file, s, sink, url_filter, lang_model, languages, min_lang_score, stats,
                            prescreen)
    except NotAWarcError as e:
        stats["error"] = str(e)
    except OSError:
        raise  # I/O failed (storage down, disk error), not the data: the task is retried
    except Exception as e:  # the file is unreadable past this point: what was read is kept
        stats["error"] = f"unreadable after {stats['records']} records: {type(e).__name__}: {e}"[:500]
    if it.truncated and "error" not in stats:
        stats["error"] = f"truncated: {it.truncated}"
    return stats


def _process_record(record, warc_file: str, s: ExtractSettings, sink: Sink, url_filter, lang_model,
                    languages: tuple[str, ...], min_lang_score: float, stats: dict, prescreen: bool = False) -> None:
    """One response record to the sink: kept as a document, or dropped with its reason."""
    from udfs.langid import identify, language_verdict
    from udfs.prescreen import prescreen as prescreen_page
    h = record.rec_headers
    url = h.get_header("WARC-Target-URI")
    date = h.get_header("WARC-Date")
    rid = doc_id(h.get_header("WARC-Record-ID"), url, date)
    try:
        http = record.http_headers
        status = _http_status(http)
        ctype = http.get_header("Content-Type") if http is not None else None
        reason = record_reason(url, status, ctype, h.get_header("WARC-Identified-Payload-Type"), record.length,
                               s.max_record_bytes)
        if reason:
            sink.drop(reason, rid, url, {"status": status, "content_type": ctype})
            return
        if url_filter is not None:
            v = url_filter.check(url)
            if not v.keep:
                sink.drop(v.reason, rid, url, v.scores)
                return
        payload = record.content_stream().read(s.max_record_bytes + 1)
        if len(payload) > s.max_record_bytes:  # e.g. a decompression bomb: stop reading at the limit
            sink.drop("too_large", rid, url, {"decoded_bytes_over": s.max_record_bytes})
            return
        if not payload.strip():
            sink.drop("empty_payload", rid, url)
            return
        if looks_binary(payload):
            sink.drop("binary_payload", rid, url, {"content_type": ctype})
            return
        try:
            html, encoding = decode_payload(payload, ctype)
        except DecodeError as e:
            sink.drop("decode_error", rid, url, {"error": str(e)})
            return
        if prescreen:
            t0 = time.perf_counter()
            evidence = prescreen_page(html, lang_model, languages)
            stats["prescreen_seconds"] += time.perf_counter() - t0
            if evidence is not None:
                stats["prescreen_dropped"] += 1
                sink.drop("lang_prescreen", rid, url, evidence)
                return
        t0 = time.perf_counter()
        try:
            # the payload as it arrived is html's UTF-8 when it decoded as UTF-8 with nothing replaced
            exact = encoding == "utf-8" and "\ufffd" not in html and not payload.startswith(BOM_UTF8)
            utf8 = payload if exact else None
            text = clean_text(extract_text(html, url, s, utf8))
        except ExtractTimeout:
            sink.drop("extract_timeout", rid, url, {"timeout_s": s.timeout_s, "html_chars": len(html)})
            return
        except (ValueError, TypeError, RecursionError, MemoryError, AttributeError) as e:
            sink.drop("extract_error", rid, url, {"error": f"{type(e).__name__}: {e}"[:300]})
            return
        finally:
            stats["extract_seconds"] += time.perf_counter() - t0
        stats["html_bytes"] += len(payload)
        if len(text.strip()) < s.min_text_chars:
            sink.drop("empty_text", rid, url, {"html_bytes": len(payload)})
            return
        lang, lang_score = None, None
        if lang_model is not None:
            lang, lang_score = identify(text, lang_model)
            v = language_verdict(lang, lang_score, list(languages), min_lang_score)
            if not v.keep:
                sink.drop(v.reason, rid, url, v.scores, text)
                return
        sink.keep({"id": rid, "url": url, "domain": domain_of(url), "warc_date": date, "warc_file": warc_file,
                   "warc_record_id": h.get_header("WARC-Record-ID"), "charset": encoding,
                   "html_bytes": len(payload), "text": text, "text_chars": len(text),
                   "lang": lang, "lang_score": lang_score})
    except ExtractTimeout:
        sink.drop("extract_timeout", rid, url, {"timeout_s": s.timeout_s})
    except OSError:
        raise  # reading the input or writing the output failed: not this record's fault
    except Exception as e:  # one malformed record never stops the file
        sink.drop("bad_record", rid, url, {"error": f"{type(e).__name__}: {e}"[:300]})
