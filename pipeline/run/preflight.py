"""Checks before any work: a command fails in seconds, naming what to fix, instead of after hours.

``mdr run`` / ``mdr stage`` check that the output can be written (scheme, bucket, credentials, a probe
write), and that what each stage will load exists and is sound (URL lists, language-ID and quality
models) before the first stage starts; ``mdr submit`` checks buckets, credentials and the remote files
the cluster will read. Errors are ``StorageError`` / ``ModelError`` (exit 3) or ``ConfigError`` (exit 2).
"""
from __future__ import annotations

import struct

from pipeline.core.config import Config, ConfigError
from pipeline.core.storage import Storage, StorageError, join, scheme

FASTTEXT_MAGIC = 793712314


def check_output(store: Storage, uri: str, *, probe: bool = True) -> None:
    """The output location can be written (see ``Storage.check_writable``)."""
    store.check_writable(uri, probe=probe)


def _canonical(uri: str) -> str:
    """One spelling per location: local paths absolute and normalised, s3a:// as s3://, no trailing slash."""
    import os
    from pipeline.core.storage import _local_path
    if scheme(uri) == "file":
        return os.path.abspath(_local_path(uri))
    if scheme(uri) == "s3a":
        uri = "s3://" + uri.split("://", 1)[1]
    return uri.rstrip("/")


def _overlaps(a: str, b: str) -> str | None:
    """How canonical location ``a`` relates to canonical location ``b``: "is", "inside", "contains" or None."""
    if a == b:
        return "is"
    if a.startswith(b + "/"):
        return "inside"
    if b.startswith(a + "/"):
        return "contains"
    return None


def check_overlap(store: Storage, stage: str, inp, output: str) -> None:
    """Before any work: a stage's output is a folder of its own. It must not be, contain or sit inside its input,
    nor another stage's committed dataset (cleanup and the manifest would then cover another dataset's files)."""
    from pipeline.core.dataset import MANIFEST, read_manifest
    out = output.rstrip("/")
    fix = "choose an output folder of its own (mdr run writes <output>/<stage>/)"
    where = _canonical(out)
    for other in [inp.uri, *inp.parts]:
        how = _overlaps(where, _canonical(other))
        if how:
            what = "is its input" if how == "is" else f"{'is inside' if how == 'inside' else how} its input"
            raise ConfigError(f"stage {stage}: the output {out} {what} {other.rstrip('/')}; {fix}")
    if scheme(out) in ("http", "https"):
        return
    parent = out
    while "/" in parent.split("://", 1)[-1].strip("/"):
        parent = parent.rsplit("/", 1)[0]
        try:
            held = store.exists(join(parent, MANIFEST))
        except StorageError:  # credentials scoped below this folder: it is not ours to check
            break
        if held:
            man = read_manifest(store, parent) or {}
            raise ConfigError(f"stage {stage}: the output {out} is inside {parent}, the committed dataset of stage "
                              f"{man.get('stage', '?')}; {fix}")
    man = read_manifest(store, out)
    if man is not None and where == _canonical(man.get("input", {}).get("uri") or ""):
        raise ConfigError(f"stage {stage}: the output {out} is the input its committed dataset was made from; {fix}")
    if man is not None and man.get("stage") != stage:
        raise ConfigError(f"stage {stage}: the output {out} is the committed dataset of stage {man.get('stage')}; "
                          f"{fix}, or delete that dataset first")
    inner = [f.rsplit("/", 1)[0] for f in store.list_files(out, hidden=True)
             if f.rsplit("/", 1)[1] == MANIFEST and f != join(out, MANIFEST)]
    if inner:
        raise ConfigError(f"stage {stage}: the output {out} contains committed datasets ({', '.join(inner[:5])}); {fix}")


def check_url_lists(store: Storage, cfg: Config) -> None:
    """The blocklist categories and word lists the URL filter will read are there (not loaded here)."""
    uf = cfg.extract.url_filter
    if not uf.enabled:
        return
    if uf.blocklist_uri:
        store.check_readable(uf.blocklist_uri, "extract.url_filter.blocklist_uri")
        for cat in uf.blocklist_categories:
            if not any(store.exists(join(uf.blocklist_uri, cat, n)) for n in ("domains", "urls")):
                raise StorageError(f"{join(uf.blocklist_uri, cat)}: no 'domains' or 'urls' list for blocklist "
                                   f"category {cat!r}; fix extract.url_filter.blocklist_categories or blocklist_uri")
    if uf.words_uri:
        store.check_readable(uf.words_uri, "extract.url_filter.words_uri")
        for lang in uf.word_languages:
            if not store.exists(join(uf.words_uri, lang)):
                raise StorageError(f"{join(uf.words_uri, lang)}: no word list for language {lang!r}; fix "
                                   f"extract.url_filter.word_languages or words_uri")


def check_extract(store: Storage, cfg: Config) -> None:
    check_url_lists(store, cfg)
    if cfg.extract.langid.enabled:
        from udfs.langid import load_model
        load_model(cfg.extract.langid.model_uri, store)  # cached: the stage reuses it


def check_quality(store: Storage, cfg: Config) -> None:
    from pipeline.stages.quality import model_spec
    from udfs.quality import check_model
    check_model(model_spec(cfg), store)


def check_dedup_exact(store: Storage, cfg: Config) -> None:
    """A BPE tokenizer's package is installed (its vocabulary loads)."""
    from udfs.exact_substring import check_tokenizer
    try:
        check_tokenizer(cfg.dedup_exact.tokenizer)
    except ImportError as e:
        raise ConfigError(f"dedup_exact.tokenizer: {e}") from e


STAGE_CHECKS = {"extract": check_extract, "quality": check_quality, "dedup_exact": check_dedup_exact}


def check_stage(store: Storage, cfg: Config, name: str, output: str) -> None:
    """Before a stage: its output is writable and what it loads is sound."""
    check_output(store, output)
    fn = STAGE_CHECKS.get(name)
    if fn is not None:
        fn(store, cfg)


def check_run(store: Storage, cfg: Config, stages: list[str], input_uri: str, root: str) -> None:
    """Before `mdr run`'s first stage: the output root, the first stage's input, and every stage's models/lists,
    so a bad quality model fails now, not after the Spark stages ran."""
    from pipeline.stages import STAGES
    check_output(store, root)
    if stages:
        STAGES[stages[0]].resolve_input(store, cfg, input_uri)
    for name in stages:
        fn = STAGE_CHECKS.get(name)
        if fn is not None:
            fn(store, cfg)


# --------------------------------------------------------------------------- mdr submit

def _fasttext_header(store: Storage, uri: str, key: str) -> None:
    """The first bytes of a (possibly huge, remote) fastText model, without downloading all of it."""
    from udfs.langid import ModelError
    try:
        with store.open_read(uri) as f:
            head = f.read(8)
    except StorageError as e:
        raise ModelError(f"{key}={uri}: cannot read it ({e})") from None
    if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
        raise ModelError(f"{key}={uri}: not a fastText model (bad file header); point {key} at a .bin/.ftz file "
                         f"made by fastText")


def check_submit(store: Storage, cfg: Config, stages: list[str], input_uri: str, root: str, *,
                 dry_run: bool) -> list[str]:
    """Before `mdr submit`: the output bucket takes writes (a dry run writes nothing: it only looks), the input and
    every remote file a stage will read are there, models have a fastText header. Returns warnings."""
    from pipeline.stages import STAGES
    warnings: list[str] = []
    check_output(store, root, probe=not dry_run)
    if scheme(input_uri) != "file":
        bucket_root = input_uri.split("://", 1)[0] + "://" + input_uri.split("://", 1)[1].split("/", 1)[0]
        if scheme(input_uri) in ("s3", "s3a", "gs"):
            store.check_readable(bucket_root, "--input")
    if stages:
        try:
            STAGES[stages[0]].resolve_input(store, cfg, input_uri)
        except StorageError as e:
            if not dry_run:
                raise
            warnings.append(f"input: {e}")
    uris = []
    if "extract" in stages:
        uf, li = cfg.extract.url_filter, cfg.extract.langid
        if uf.enabled:
            uris += [("extract.url_filter.blocklist_uri", uf.blocklist_uri, False),
                     ("extract.url_filter.words_uri", uf.words_uri, False)]
        if li.enabled:
            uris.append(("extract.langid.model_uri", li.model_uri, True))
    if "quality" in stages:
        uris.append(("quality.model_uri", cfg.quality.model_uri, cfg.quality.backend == "fasttext"))
    for key, uri, fasttext in uris:
        if not uri or scheme(uri) == "file":
            continue  # local paths: plan_run warns that pods cannot read them
        if scheme(uri) not in ("s3", "s3a", "gs", "http", "https"):
            raise ConfigError(f"{key}={uri}: unsupported scheme; use s3://, gs:// or https://")
        store.check_readable(uri, key)
        if fasttext:
            _fasttext_header(store, uri, key)
    return warnings
