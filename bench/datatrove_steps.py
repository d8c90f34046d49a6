"""datatrove 0.10.1's equivalent of mdr's extract -> filter -> dedup_fuzzy, for bench/compare_datatrove.py.

One function per datatrove step group; each runs a LocalPipelineExecutor and is started by
compare_datatrove in its own process, so each is timed and measured alone. Local adaptations, all
because this machine has no internet and datatrove is installed without its extras:

- ``LocalLanguageFilter``: datatrove's LanguageFilter (ft176 backend, same ``predict``) with the model
  loaded from the local lid.176.ftz (``udfs.langid.default_model_path()``) instead of downloading
  lid.176.bin; mdr uses the same file, so both sides run the same model.
- ``LocalURLFilter``: datatrove's URLFilter with tldextract's bundled public-suffix snapshot
  (``suffix_list_urls=()``) instead of fetching the list.
- The dependency check is told that ``fasttext-numpy2`` (the numpy-2 fastText build mdr uses, module
  ``fasttext``) satisfies datatrove's ``fasttext-numpy2-wheel`` requirement; applied when this module is
  imported, which happens before datatrove's workers rebuild the pipeline steps.
- Trafilatura is our 2.3.1 (datatrove's processing extra would pin trafilatura<1.12).

Rejected documents are written by light exclusion writers (id, url and the reason, not the text), as
mdr's rejects are, so the comparison can name why each side removed a document.
"""
from __future__ import annotations

import json

import datatrove.pipeline.base as _dt_base

_orig_check = _dt_base.check_required_dependencies


def _check(step_name, deps):
    deps = [("fasttext", "fasttext-numpy2") if d == ("fasttext", "fasttext-numpy2-wheel") else d for d in deps]
    return _orig_check(step_name, deps)


_dt_base.check_required_dependencies = _check

from datatrove.pipeline.filters import LanguageFilter, URLFilter  # noqa: E402
from datatrove.utils.lid import FT176LID  # noqa: E402


class _LocalFT176(FT176LID):
    def __init__(self, languages, model_path: str):
        super().__init__(languages)
        self.model_path = model_path

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText
            self._model = _FastText(self.model_path)
        return self._model


class LocalLanguageFilter(LanguageFilter):
    def __init__(self, *args, model_path: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = _LocalFT176(self.languages, model_path)


class LocalURLFilter(URLFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from tldextract import TLDExtract
        self.tldextractor = TLDExtract(suffix_list_urls=())


def reject_adapter(self, document) -> dict:
    """Exclusion-writer rows: who, and why (the filter's reason, language scores, MinHash cluster)."""
    md = document.metadata
    return {"id": document.id, "url": md.get("url"), "reason": md.get("filter_reason"),
            "language": md.get("language"), "language_score": md.get("language_score"),
            "cluster": md.get("minhash_cluster_id")}


def _writer(folder: str, slim: bool = False):
    from datatrove.pipeline.writers import JsonlWriter
    return JsonlWriter(folder, adapter=reject_adapter if slim else None)


def minhash_config(p: dict):
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig
    return MinhashConfig(n_grams=p["ngram"], num_buckets=p["bands"], hashes_per_bucket=p["rows"], seed=p["seed"],
                         hash_config=HashConfig(precision=64, hash_fc="xxhash"))


def _run(pipeline, tasks: int, workers: int, logs: str):
    from datatrove.executor import LocalPipelineExecutor
    LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logs, skip_completed=False).run()


def step_extract(a: dict) -> None:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    u, t = a["url_filter"], a["trafilatura"]
    url_filter = (LocalURLFilter(exclusion_writer=_writer(f"{a['work']}/removed/url", True))
                  if u["integrated_lists"] else
                  LocalURLFilter(soft_word_threshold=u["soft_min_distinct"], extra_domains=u["domains"],
                                 extra_urls=u["urls"], banned_words=u["hard_words"], banned_subwords=u["strict_words"],
                                 soft_banned_words=u["soft_words"], use_integrated_lists=False,
                                 exclusion_writer=_writer(f"{a['work']}/removed/url", True)))
    pipeline = [
        WarcReader(a["warc_dir"], glob_pattern="*.warc.gz"),
        url_filter,
        Trafilatura(favour_precision=t["favor_precision"], timeout=t["timeout_s"], deduplicate=t["deduplicate"],
                    fast=not t["fallback"], favor_recall=t["favor_recall"], include_tables=t["include_tables"]),
        LocalLanguageFilter(languages=a["languages"], language_threshold=a["min_lang_score"], model_path=a["lid_model"],
                            exclusion_writer=_writer(f"{a['work']}/removed/lang", True)),
        JsonlWriter(f"{a['work']}/extract"),
    ]
    _run(pipeline, a["tasks"], a["workers"], f"{a['work']}/logs/extract")


def step_filter(a: dict) -> None:
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    r, q = a["repetition"], a["quality"]
    pipeline = [
        JsonlReader(f"{a['work']}/extract"),
        GopherRepetitionFilter(dup_line_frac=r["max_dup_line_frac"], dup_para_frac=r["max_dup_para_frac"],
                               dup_line_char_frac=r["max_dup_line_char_frac"],
                               dup_para_char_frac=r["max_dup_para_char_frac"],
                               top_n_grams=tuple((int(n), v) for n, v in r["max_top_ngram_char_frac"].items()),
                               dup_n_grams=tuple((int(n), v) for n, v in r["max_dup_ngram_char_frac"].items()),
                               exclusion_writer=_writer(f"{a['work']}/removed/repetition", True)),
        GopherQualityFilter(min_doc_words=q["min_words"], max_doc_words=q["max_words"],
                            min_avg_word_length=q["min_mean_word_len"], max_avg_word_length=q["max_mean_word_len"],
                            max_symbol_word_ratio=q["max_symbol_word_ratio"],
                            max_bullet_lines_ratio=q["max_bullet_lines_share"],
                            max_ellipsis_lines_ratio=q["max_ellipsis_lines_share"],
                            max_non_alpha_words_ratio=q["min_alpha_words_share"], min_stop_words=q["min_stop_words"],
                            stop_words=q["stop_words"],
                            exclusion_writer=_writer(f"{a['work']}/removed/quality", True)),
        JsonlWriter(f"{a['work']}/filter"),
    ]
    _run(pipeline, a["tasks"], a["workers"], f"{a['work']}/logs/filter")


def step_minhash_signature(a: dict) -> None:
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
    from datatrove.pipeline.readers import JsonlReader
    pipeline = [JsonlReader(f"{a['work']}/filter"),
                MinhashDedupSignature(f"{a['work']}/minhash/signatures", config=minhash_config(a["minhash"]))]
    _run(pipeline, a["tasks"], a["workers"], f"{a['work']}/logs/minhash_signature")


def step_minhash_buckets(a: dict) -> None:
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
    cfg = minhash_config(a["minhash"])
    pipeline = [MinhashDedupBuckets(f"{a['work']}/minhash/signatures", f"{a['work']}/minhash/buckets", config=cfg)]
    _run(pipeline, cfg.num_buckets, a["workers"], f"{a['work']}/logs/minhash_buckets")


def step_minhash_cluster(a: dict) -> None:
    from datatrove.pipeline.dedup.minhash import MinhashDedupCluster
    pipeline = [MinhashDedupCluster(f"{a['work']}/minhash/buckets", f"{a['work']}/minhash/remove_ids",
                                    config=minhash_config(a["minhash"]), save_cluster_id=True)]
    _run(pipeline, 1, 1, f"{a['work']}/logs/minhash_cluster")


def step_minhash_filter(a: dict) -> None:
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    pipeline = [JsonlReader(f"{a['work']}/filter"),
                MinhashDedupFilter(f"{a['work']}/minhash/remove_ids", load_cluster_ids=True,
                                   exclusion_writer=_writer(f"{a['work']}/removed/minhash", True)),
                JsonlWriter(f"{a['work']}/dedup_fuzzy")]
    _run(pipeline, a["tasks"], a["workers"], f"{a['work']}/logs/minhash_filter")


STEPS = {"extract": step_extract, "filter": step_filter, "minhash_signature": step_minhash_signature,
         "minhash_buckets": step_minhash_buckets, "minhash_cluster": step_minhash_cluster,
         "minhash_filter": step_minhash_filter}


def child_main(step: str, args_file: str) -> int:
    """Entry of the measured child process (``python -m bench.compare_datatrove _dt STEP ARGS.json``). Not run as
    ``__main__`` of this module: datatrove's workers must import these classes from here, patch included."""
    with open(args_file) as f:
        STEPS[step](json.load(f))
    return 0
