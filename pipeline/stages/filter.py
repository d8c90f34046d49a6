"""filter: Gopher repetition removal, Gopher quality filters, RefinedWeb line-wise corrections, then PII redaction,
one task per part.

The order is RefinedWeb's (repetition, document-wise, line-wise). A document is judged by the rules of its
``lang`` column (``filter.languages``: word splitting, stop words, thresholds; a language without an entry: its own
word splitting and stopwords-iso list with the base thresholds), English and documents without one by the base
sections.
Kept rows keep every input column,
with the corrected text and a few score columns (measured on the text as it came in), so a threshold
can later be re-tuned with a cheap filter; dropped rows go to the rejects with their scores. The text of a
kept document then has its e-mail and public IP addresses replaced (``filter.pii``, ``udfs.pii``): what was
replaced is counted per kind in the manifest's ``stats.pii``; no document is kept or removed for it.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import pyarrow as pa

from pipeline.core.config import FilterConfig, LanguageRules
from pipeline.core.dataset import iter_part, open_input
from pipeline.core.sparkio import input_schema
from pipeline.core.stage import StageContext, StageResult, StageSpec, TaskSink, run_file_tasks
from pipeline.core.storage import Storage

# score column -> (verdict score it comes from, Arrow type)
SCORE_COLUMNS = {
    "gopher_n_words": ("n_words", pa.int32()),
    "gopher_mean_word_len": ("mean_word_len", pa.float32()),
    "gopher_alpha_words_share": ("alpha_words_share", pa.float32()),
    "gopher_dup_line_frac": ("dup_line_frac", pa.float32()),
    "gopher_top_2_gram_char_frac": ("top_2_gram_char_frac", pa.float32()),
    "gopher_dup_5_gram_char_frac": ("dup_5_gram_char_frac", pa.float32()),
    "line_removed_words_share": ("line_removed_words_share", pa.float32()),
}


def output_schema(schema: pa.Schema) -> pa.Schema:
    """The input columns (earlier score columns replaced) plus this stage's score columns."""
    fields = [f for f in schema if f.name not in SCORE_COLUMNS]
    return pa.schema(fields + [pa.field(name, tp) for name, (_, tp) in SCORE_COLUMNS.items()])


# tokenizers of scripts written without spaces: the line rules count their words with the segmenter
SPACELESS = frozenset({"jieba", "mecab", "thai", "chars"})


def line_word_counter(split):
    """Words of a line by a segmenter: tokens holding a letter or digit (a line of symbols only: its tokens)."""
    def count(line: str) -> int:
        toks = split(line)
        return sum(1 for t in toks if any(c.isalnum() for c in t)) or len(toks)
    return count


def filter_document(text: str, cfg: FilterConfig, lang: str | None = None,
                    rules: LanguageRules | None = None) -> tuple[str, str | None, dict]:
    """(corrected text, reason or None when kept, scores) for one document, stages in RefinedWeb's order,
    by the rules of its language (pass ``rules`` to resolve them once per language)."""
    from udfs.gopher import gopher_quality, gopher_repetition
    from udfs.lang_words import splitter
    from udfs.line_filter import correct_lines

    r = rules or cfg.rules(lang)
    split = splitter(r.tokenizer)
    scores: dict = {}
    words = split(text) if (r.repetition.enabled or r.quality.enabled) else None
    if r.repetition.enabled:
        v = gopher_repetition(text, r.repetition, words)
        scores.update(v.scores)
        if not v.keep:
            return text, v.reason, scores
    if r.quality.enabled:
        v = gopher_quality(text, r.quality, words)
        scores.update(v.scores)
        if not v.keep:
            return text, v.reason, scores
    if r.lines.enabled:
        text, v = correct_lines(text, r.lines, line_word_counter(split) if r.tokenizer in SPACELESS else None)
        scores.update(v.scores)
        if not v.keep:
            return text, v.reason, scores
    return text, None, scores


def redact_document(text: str, cfg: FilterConfig) -> tuple[str, dict[str, int]]:
    """(kept text with personal data replaced, replacements per kind); unchanged when filter.pii is off."""
    if not cfg.pii.enabled:
        return text, {}
    from udfs.pii import redact
    return redact(text, cfg.pii.kinds)


def _count_pii(stats: dict, counts: dict[str, int]) -> None:
    """A task's ``stats.pii``: replacements per kind and the documents that had any (``run_file_tasks`` sums a
    dict of counts across tasks key by key)."""
    into = stats.setdefault("pii", {})
    for kind, n in counts.items():
        into[kind] = into.get(kind, 0) + n
    into["documents_redacted"] = into.get("documents_redacted", 0) + (sum(counts.values()) > 0)


def _pii_stats(stats: dict, cfg: FilterConfig) -> dict | None:
    """The manifest's ``stats.pii``: the configured kinds, replacements per kind (0 where none) and the documents
    that had any."""
    if not cfg.pii.enabled:
        return None
    got = stats.get("pii") or {}
    return {"kinds": list(cfg.pii.kinds), **{kind: int(got.get(kind, 0)) for kind in cfg.pii.kinds},
            "documents_redacted": int(got.get("documents_redacted", 0))}


def _filter_part(store: Storage, cfg: FilterConfig, root: str, uri: str, sink: TaskSink) -> None:
    rules: dict[str | None, LanguageRules] = {}
    for batch in iter_part(store, uri, root=root):  # a row group at a time: memory does not grow with the part
        has_chars = "text_chars" in batch.column_names
        for row in batch.to_pylist():
            original = row["text"] or ""
            lang = row.get("lang")
            try:
                r = rules.get(lang) or rules.setdefault(lang, cfg.rules(lang))
                text, reason, scores = filter_document(original, cfg, lang, r)
            except Exception as e:  # a record that breaks a filter is counted, never stops the part
                sink.drop("filter_error", row["id"], row.get("url"),
                          details={"error": f"{type(e).__name__}: {e}", "lang": lang}, text=original)
                continue
            if reason is not None:
                if lang is not None:
                    scores["lang"] = lang  # the removed documents' languages, per reason, in the profile
                sink.drop(reason, row["id"], row.get("url"), details=scores, text=original)
                continue
            text, pii = redact_document(text, cfg)
            if pii:
                _count_pii(sink.stats, pii)
            row["text"] = text
            if has_chars:
                row["text_chars"] = len(text)
            for name, (key, _) in SCORE_COLUMNS.items():
                row[name] = scores.get(key)
            sink.keep(row)
    # the languages judged, so the manifest records each one's rules (see run)
    sink.stats["languages_judged"] = {lang or "": 1 for lang in rules}


def run(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.filter
    schema = output_schema(input_schema(ctx.store, ctx.input.parts))
    result = run_file_tasks(ctx, partial(_filter_part, ctx.store, cfg, ctx.input.uri), schema, label="parts")
    result.params = dataclasses.asdict(cfg)
    langid = ctx.cfg.extract.langid
    judged = [lang for lang in result.stats.pop("languages_judged", {}) if lang]  # langid may keep every language
    result.params["rules_by_language"] = rules_by_language(
        cfg, sorted(set(judged) | set(langid.languages if langid.enabled else ())))
    pii = _pii_stats(result.stats, cfg)
    if pii is not None:
        result.stats["pii"] = pii
    return result


def rules_by_language(cfg: FilterConfig, kept_languages=()) -> dict:
    """The thresholds each language is judged by, for reports and cards: the base rules as ``*``, every
    filter.languages entry, and the generic rules of each other language in ``kept_languages`` (those language ID
    keeps and those the stage met); ``rules`` says which kind."""
    out = {}
    for lang in ["*", *sorted(set(cfg.languages) | set(kept_languages) - {"en"})]:
        doc_lang = None if lang == "*" else lang
        r = cfg.rules(doc_lang)
        q, rep, lines = r.quality, r.repetition, r.lines
        out[lang] = {"rules": cfg.rules_source(doc_lang), "tokenizer": r.tokenizer,
                     "min_words": q.min_words, "min_mean_word_len": q.min_mean_word_len,
                     "max_mean_word_len": q.max_mean_word_len, "min_alpha_words_share": q.min_alpha_words_share,
                     "min_stop_words": q.min_stop_words, "stop_words": list(q.stop_words),
                     "max_dup_line_frac": rep.max_dup_line_frac, "max_dup_para_frac": rep.max_dup_para_frac,
                     "max_top_ngram_char_frac": dict(rep.max_top_ngram_char_frac),
                     "max_dup_ngram_char_frac": dict(rep.max_dup_ngram_char_frac),
                     "max_removed_words_share": lines.max_removed_words_share}
    return out


# logic 4: documents are judged by the rules of their language (filter.languages) (2), kept documents' text goes
# through PII redaction (filter.pii) (3), a language without an entry is judged by generic rules (its own word
# splitting and stopwords-iso list), not English's (4)
# shuffle_factor: only the ids are shuffled (pipeline.core.unique_ids), ~0.016 bytes per byte of input parts
SPEC = StageSpec("filter", ("filter",), lambda store, cfg, uri: open_input(store, uri), run, logic_version=4,
                 shuffle_factor=0.05)
