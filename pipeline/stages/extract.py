"""extract: WARC files -> documents (URL filter, main text (udfs.main_text), language ID), one Spark task per WARC."""
from __future__ import annotations

import hashlib
import json
from functools import partial

import pyarrow as pa

from pipeline.core.config import Config, UrlFilterConfig
from pipeline.core.dataset import InputDataset
from pipeline.core.stage import StageContext, StageResult, StageSpec, TaskSink, run_file_tasks
from pipeline.core.storage import (SourceError, Storage, StorageError, TransientStorageError, is_remote, iter_lines,
                                   join, scheme)
from udfs.extract import ExtractSettings, process_warc
from udfs.url_filter import UrlFilter, parse_list

SCHEMA = pa.schema([
    ("id", pa.string()), ("url", pa.string()), ("domain", pa.string()), ("warc_date", pa.string()),
    ("warc_file", pa.string()), ("warc_record_id", pa.string()), ("charset", pa.string()),
    ("html_bytes", pa.int64()), ("text", pa.string()), ("text_chars", pa.int64()),
    ("lang", pa.string()), ("lang_score", pa.float64()),
])
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
LISTING_SUFFIXES = (".paths", ".paths.gz", ".txt", ".txt.gz")


def resolve_warcs(store: Storage, cfg: Config, uri: str) -> InputDataset:
    """One WARC, a folder/prefix of WARCs, or a paths listing (entries resolved against run.paths_base_url)."""
    if uri.endswith(LISTING_SUFFIXES):
        files = []
        for line in iter_lines(store, uri):
            files.append(line if "://" in line or line.startswith("/") else join(cfg.run.paths_base_url, line))
    elif scheme(uri) in ("http", "https"):
        files = [uri]
    elif not uri.endswith("/") and uri.endswith(WARC_SUFFIXES) and not store.is_dir(uri):
        if not store.exists(uri):
            raise StorageError(f"{uri}: no such WARC file; check the input path")
        files = [uri]
    elif store.is_dir(uri) or is_remote(uri):
        files = [f for f in store.list_files(uri) if f.endswith(WARC_SUFFIXES)]
    else:
        raise StorageError(f"{uri}: no such WARC file, folder or paths listing; check the input path")
    if not files:
        raise StorageError(f"{uri}: no WARC files found (looked for {', '.join(WARC_SUFFIXES)})")
    files = sorted(dict.fromkeys(files))
    for f in files:  # only the configured bases are ever fetched: refuse before any task starts
        if scheme(f) in ("http", "https"):
            store.check_http_allowed(f)
    ident = [(f, store.size(f) if scheme(f) not in ("http", "https") else None) for f in files]
    fp = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]
    return InputDataset(uri, files, None, fp, external=True)


def settings(cfg: Config) -> ExtractSettings:
    e = cfg.extract
    return ExtractSettings(max_record_bytes=e.max_record_bytes, timeout_s=e.timeout_s, min_text_chars=e.min_text_chars,
                           favor_precision=e.favor_precision, favor_recall=e.favor_recall,
                           include_comments=e.include_comments, include_tables=e.include_tables,
                           fallback=e.fallback, deduplicate=e.deduplicate, extractor=e.extractor,
                           second_opinion_below_chars=e.second_opinion_below_chars,
                           second_opinion_factor=e.second_opinion_factor,
                           boilerplate_lines=e.boilerplate_lines)


def _extract_file(store: Storage, s: ExtractSettings, url_filter_bc, langid: dict, transient_fails_input: bool,
                  uri: str, sink: TaskSink) -> None:
    from udfs.langid import load_model
    model = load_model(langid["model_uri"], store) if langid["enabled"] else None
    url_filter = url_filter_bc.value if url_filter_bc is not None else None
    try:
        with store.open_read(uri) as stream:
            stats = process_warc(stream, uri, s, sink, url_filter, model, tuple(langid["languages"]), langid["min_score"],
                                 langid["prescreen"])
    except SourceError as e:  # the file itself is missing, refused or served wrong: a failed input
        sink.fail(str(e))
        return
    except TransientStorageError as e:  # the storage did not serve it after retries: not the file's failure
        if not transient_fails_input:
            raise  # the task fails, Spark retries it; the stage never commits without this file
        sink.fail(str(e))
        return
    error = stats.pop("error", None)
    sink.stats.update(stats)
    if error:  # what was read before the damage is kept; the file is listed as failed
        sink.fail(error)


def load_url_filter(cfg: UrlFilterConfig, store: Storage) -> UrlFilter:
    """Read the configured lists once; a missing category or word file stops the job (fail hard on discovery)."""
    domains: list[str] = []
    urls: list[str] = []
    for cat in cfg.blocklist_categories if cfg.blocklist_uri else []:
        found = False
        for name, target in (("domains", domains), ("urls", urls)):
            uri = join(cfg.blocklist_uri, cat, name)
            if store.exists(uri):
                found = True
                target += parse_list(store.read_bytes(uri))
        if not found:
            raise StorageError(f"{join(cfg.blocklist_uri, cat)}: no 'domains' or 'urls' list for blocklist "
                               f"category {cat!r}; fix extract.url_filter.blocklist_categories or blocklist_uri")
    words: list[str] = []
    for lang in cfg.word_languages if cfg.words_uri else []:
        uri = join(cfg.words_uri, lang)
        if not store.exists(uri):
            raise StorageError(f"{uri}: no word list for language {lang!r}; fix "
                               f"extract.url_filter.word_languages or words_uri")
        words += parse_list(store.read_bytes(uri))
    return UrlFilter.from_lists(cfg, domains, urls, words)


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg
    uf_cfg = cfg.extract.url_filter
    url_filter_bc = None
    if uf_cfg.enabled:
        url_filter_bc = ctx.spark.sparkContext.broadcast(load_url_filter(uf_cfg, ctx.store))
    li = cfg.extract.langid
    if li.enabled:  # fail fast on a bad model, before any task starts
        from udfs.langid import load_model
        load_model(li.model_uri, ctx.store)
    langid = {"enabled": li.enabled, "model_uri": li.model_uri, "languages": list(li.languages),
              "min_score": li.min_score, "prescreen": li.prescreen}
    fn = partial(_extract_file, ctx.store, settings(cfg), url_filter_bc, langid,
                 cfg.run.transient_input_errors == "failed_input")
    result = run_file_tasks(ctx, fn, SCHEMA, label="WARC files", drop_failed=cfg.extract.drop_failed_files)
    result.params = {"trafilatura": settings(cfg).__dict__, "languages": langid["languages"],
                     "min_lang_score": langid["min_score"], "lang_prescreen": li.enabled and li.prescreen}
    return result


# shuffle_factor: only the ids are shuffled (pipeline.core.unique_ids), ~0.0015 bytes per byte of WARC
SPEC = StageSpec("extract", ("extract",), resolve_warcs, run, logic_version=3, shuffle_factor=0.005)  # 2: udfs/main_text (resiliparse second opinion, boilerplate lines); 3: non-response records are counted apart, not removed
