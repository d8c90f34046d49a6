"""The dedup_exact Spark stage against the brute-force reference, and the named cases of issue 5.

Many small random corpora (one seed each, own vocabulary) go through one Spark job per
configuration, so each job checks dozens of seeds; every document must come out exactly as the
reference says (reason, text, removed characters).
"""
from __future__ import annotations

import gzip
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from udfs.exact_reference import RefResult, reference_dedup
from udfs.exact_substring import doc_order_key, tokens_regex

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
SEPS = [" ", " ", " ", "  ", "\n", "\n\n", " \t", ", ", ". "]
CJK = ["日本語", "中文字", "です", "東京都", "。"]
DATES = ["2023-01-01T00:00:00Z", "2024-05-05T10:00:00Z", "2024-05-05T10:00:00Z", "2025-02-02T00:00:00Z", None]


def make_corpus(seed: int, k: int) -> list[dict]:
    """A small corpus with natural repeats (tiny vocabulary) and planted ones: spans in several docs,
    twice in one doc, overlapping, whole docs that are a span, copies, URL variants, CJK, empty text."""
    rng = random.Random(seed)
    vocab = [f"s{seed}{w}" for w in rng.sample(WORDS, rng.randint(3, 10))]

    def words(n):
        out = []
        for _ in range(n):
            r = rng.random()
            out.append(rng.choice(CJK) if r < 0.08 else rng.choice(vocab) + ("," if r > 0.95 else ""))
        return out

    spans = [words(rng.randint(k, 3 * k)) for _ in range(rng.randint(1, 3))]
    docs: list[dict] = []
    n = rng.randint(3, 12)
    for i in range(n):
        parts = []
        for _ in range(rng.randint(0, 4)):
            r = rng.random()
            if r < 0.45:
                parts.append(words(rng.randint(0, 2 * k)))
            elif r < 0.75:
                parts.append(rng.choice(spans))
            elif r < 0.9:
                s = rng.choice(spans)
                cut = rng.randint(1, len(s) - 1)
                parts.append(s[cut:] + words(rng.randint(0, k)))      # overlaps another span's tail
            else:
                s = rng.choice(spans)
                parts.append(s + words(rng.randint(0, 3)) + s)        # repeat inside one document
        toks = [t for p in parts for t in p]
        text = "".join(t + rng.choice(SEPS) for t in toks).rstrip(" ") if toks else rng.choice(["", " ", "\n"])
        if docs and rng.random() < 0.15:
            src = rng.choice(docs)["text"] or ""
            text = src.replace(" ", "  ") if rng.random() < 0.5 else src.upper()
        if rng.random() < 0.03:
            text = None
        host = f"s{seed}.example.org"
        r = rng.random()
        if r < 0.2:
            url = None
        elif r < 0.55:
            url = rng.choice([f"http://{host}/page", f"HTTPS://{host.upper()}/page/", f"http://{host}:80/page#top",
                              f"http://{host}/page?utm_source=feed", f"https://{host}/page?fbclid=x"])
        else:
            url = f"http://{host}/doc{i}"
        docs.append({"id": f"s{seed}-{i:02d}", "url": url, "warc_date": rng.choice(DATES), "text": text})
    rng.shuffle(docs)
    return docs


def write_parquet_parts(root, docs: list[dict], n_parts: int) -> str:
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("warc_date", pa.string()), ("text", pa.string())])
    root.mkdir(parents=True, exist_ok=True)
    for p in range(n_parts):
        pq.write_table(pa.Table.from_pylist(docs[p::n_parts], schema=schema), root / f"part-{p}.parquet")
    return str(root)


def stage_results(cfg, out: str) -> tuple[dict[str, RefResult], dict]:
    store = Storage(cfg.storage)
    kept = read_dataset(store, out).to_pylist()
    got = {r["id"]: RefResult(None, r["text"], r["exact_removed_chars"]) for r in kept}
    for r in read_rejects(store, out).to_pylist():
        details = json.loads(r["details"]) if r["details"] else {}
        got[r["id"]] = RefResult(r["reason"], r["text"], details.get("exact_removed_chars", 0))
    return got, read_manifest(store, out)


def run_and_compare(spark, cfg, docs, tmp_path, n_parts=3):
    inp = write_parquet_parts(tmp_path / "in", docs, n_parts)
    out = str(tmp_path / "out")
    run_stage(cfg, "dedup_exact", inp, out, spark=spark)
    got, manifest = stage_results(cfg, out)
    want = reference_dedup(docs, cfg.dedup_exact)
    assert set(got) == set(want) == {d["id"] for d in docs}
    diff = [(i, got[i], want[i]) for i in sorted(want) if got[i] != want[i]]
    assert not diff, f"{len(diff)} documents differ from the reference, first: {diff[:3]}"
    return got, manifest


PROPERTY_CONFIGS = {
    "word-k4-latest": ["dedup_exact.k=4", "dedup_exact.tokenizer=word", "dedup_exact.url_keep=latest",
                       "dedup_exact.min_tokens_after_cut=3"],
    "whitespace-k3-longest-casefold": ["dedup_exact.k=3", "dedup_exact.tokenizer=whitespace",
                                       "dedup_exact.url_keep=longest", "dedup_exact.doc_casefold=true",
                                       "dedup_exact.min_tokens_after_cut=0", "dedup_exact.min_chars_after_cut=12"],
}


@pytest.mark.parametrize("name", sorted(PROPERTY_CONFIGS))
def test_stage_equals_brute_force_over_many_seeds(spark, cfg_factory, tmp_path, name):
    cfg = cfg_factory("run.audit=full", *PROPERTY_CONFIGS[name])
    k = cfg.dedup_exact.k
    seeds = range(40) if name.startswith("word") else range(100, 140)
    docs = [d for s in seeds for d in make_corpus(s, k)]
    got, manifest = run_and_compare(spark, cfg, docs, tmp_path)
    reasons = manifest["counts"]["removed"]
    # the corpora exercise every step, and substring cutting both trims and drops
    assert reasons.get("duplicate_url", 0) > 10 and reasons.get("duplicate_text", 0) > 5
    assert reasons.get("exact_substring_removed", 0) > 5
    trimmed = [r for r in got.values() if r.reason is None and r.removed_chars > 0]
    assert len(trimmed) > 10
    stats = manifest["stats"]
    assert stats["windows"] > 1000 and stats["marked_windows"] > 100
    assert stats["shuffle_write_bytes"] > 0 and stats["shuffle_bytes_per_input_text_gb"] > 0
    assert stats["removed_chars"] == sum(r.removed_chars for r in got.values() if r.reason in (None, "exact_substring_removed"))
    assert stats["text_bytes"] == sum(len((d["text"] or "").encode()) for d in docs)


# --------------------------------------------------------------------------- named cases, one Spark job

SPAN = "the quick brown fox jumps over the lazy dog again and again"          # 12 tokens
SPAN2 = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do"    # 10 tokens


def in_order(prefix: str, texts: list[str]) -> list[dict]:
    """Documents whose ids put them in this order by the stage's document key (first = keeps spans)."""
    docs, prev = [], None
    for i, text in enumerate(texts):
        n = 0
        while prev is not None and doc_order_key(f"{prefix}{i}-{n}", text) <= prev:
            n += 1
        doc_id = f"{prefix}{i}-{n}"
        prev = doc_order_key(doc_id, text)
        docs.append({"id": doc_id, "text": text})
    return docs


INNER = in_order("inner", [f"intro words here {SPAN} middle part {SPAN} closing words"])
THREE = in_order("three", [f"first owner alpha {SPAN2} one ends", f"second holder beta {SPAN2} two finish",
                           f"third keeper gamma {SPAN2} three stop"])
OVERLAP = in_order("ovl", ["aa1 aa2 aa3 aa4 aa5 aa6 aa7 aa8 unique1 tail",
                           "bb1 bb2 aa5 aa6 aa7 aa8 bb3 bb4 bb5 bb6 bb7 bb8 uniq2",
                           "head3 aa1 aa2 aa3 aa4 aa5 aa6 aa7 aa8 bb3 bb4 bb5 bb6 bb7 bb8 end3 fin3"])
CJK_DOCS = in_order("cjk", ["今日は東京で会議があります。明日は大阪に行きます。", "ニュース：今日は東京で会議があります。天気は晴れ。"])
EMPTY = in_order("empty", ["zz1 zz2 zz3 zz4 zz5 zz6 zz7", "zz1 zz2 zz3 zz4 zz5 zz6", "  zz2 zz3 zz4 zz5 zz6 zz7\n"])
BLANK = [{"id": "blank", "text": ""}]
CASES = INNER + THREE + OVERLAP + CJK_DOCS + EMPTY + BLANK


@pytest.fixture(scope="module")
def cases_run(spark, cfg_factory, tmp_path_factory):
    """The named cases as an external JSONL.gz dataset without url/warc_date columns, k=4."""
    tmp = tmp_path_factory.mktemp("dedup_exact_cases")
    (tmp / "in").mkdir()
    with gzip.open(tmp / "in" / "cases.jsonl.gz", "wt") as f:
        for c in CASES:
            f.write(json.dumps(c) + "\n")
    cfg = cfg_factory("run.audit=full", "dedup_exact.k=4", "dedup_exact.min_tokens_after_cut=0")
    out = str(tmp / "out")
    run_stage(cfg, "dedup_exact", str(tmp / "in"), out, spark=spark)
    got, manifest = stage_results(cfg, out)
    docs = [{"id": c["id"], "url": None, "text": c["text"]} for c in CASES]
    assert got == reference_dedup(docs, cfg.dedup_exact)
    return got, manifest, cfg


def test_span_repeated_inside_one_document(cases_run):
    got, _, _ = cases_run
    r = got[INNER[0]["id"]]
    assert r.reason is None
    assert r.text == f"intro words here {SPAN} middle part closing words"
    assert r.removed_chars == len(SPAN) + 1


def test_span_shared_by_three_documents_is_kept_once(cases_run):
    got, _, _ = cases_run
    first, *later = [d["id"] for d in THREE]
    assert SPAN2 in got[first].text and got[first].removed_chars == 0
    for i in later:
        assert got[i].reason is None and SPAN2 not in got[i].text and got[i].removed_chars == len(SPAN2) + 1
    assert got[later[0]].text == "second holder beta two finish"


def test_overlapping_spans_merge(cases_run):
    got, _, _ = cases_run
    a, b, c = (got[d["id"]] for d in OVERLAP)
    assert a.removed_chars == 0
    assert b.text == "bb1 bb2 bb3 bb4 bb5 bb6 bb7 bb8 uniq2"           # aa5..aa8 seen in the first
    assert c.text == "head3 end3 fin3"                                 # aa1..aa8 and aa5..bb8: one merged cut


def test_cjk_without_spaces(cases_run):
    got, _, _ = cases_run
    shared = "今日は東京で会議があります。"
    first, later = (got[d["id"]] for d in CJK_DOCS)
    assert shared in first.text and first.removed_chars == 0
    assert later.text == "ニュース：天気は晴れ。" and later.removed_chars == len(shared)


def test_documents_that_become_empty_are_dropped(cases_run):
    got, manifest, _ = cases_run
    src, a, b = (d["id"] for d in EMPTY)
    assert got[src].reason is None and got[src].removed_chars == 0
    assert got[a].reason == got[b].reason == "exact_substring_removed"
    assert got[a].removed_chars == len(EMPTY[1]["text"]) and got[b].removed_chars == len(EMPTY[2]["text"]) - 2
    assert got["blank"].reason is None and got["blank"].text == ""  # empty from the start: nothing cut, kept
    assert manifest["counts"]["removed"] == {"exact_substring_removed": 2}


def test_128_bit_window_hashes_equal_the_reference(spark, cfg_factory, tmp_path):
    cfg = cfg_factory("run.audit=full", "dedup_exact.hash_bits=128", *PROPERTY_CONFIGS["word-k4-latest"])
    docs = [d for s in range(10) for d in make_corpus(s, cfg.dedup_exact.k)]
    got, manifest = run_and_compare(spark, cfg, docs, tmp_path)
    assert manifest["counts"]["removed"].get("exact_substring_removed", 0) > 0
    assert manifest["params"]["hash_bits"] == 128 and manifest["params"]["name"] == "4k_word_128b_s1"
    s = manifest["stats"]
    assert s["window_shuffle_bytes_raw"] == 40 * s["windows"] > 0   # (h, h2, k1, kp): one long more a window


def test_manifest_counts_and_stats(cases_run):
    got, manifest, cfg = cases_run
    c = manifest["counts"]
    assert c["in"] == len(CASES) == c["kept"] + sum(c["removed"].values())
    assert manifest["params"]["k"] == 4 and manifest["params"]["hash_bits"] == 64
    s = manifest["stats"]
    assert s["removed_chars"] == sum(r.removed_chars for r in got.values())
    assert s["tokens"] > s["windows"] > 0
    # shuffle size per input GB, as the stage reports it (text bytes read, and the input files' bytes)
    assert s["text_bytes"] == sum(len(c["text"].encode()) for c in CASES)
    # each document is read, keyed and run through the URL and text-hash steps once, though three parts of the plan
    # (the windows, the join with their marks, the removed documents) read the result
    assert s["prepared_rows"] == len(CASES)
    assert s["shuffle_write_bytes"] > 0 and s["window_shuffle_bytes_raw"] == 32 * s["windows"]
    assert s["shuffle_bytes_per_input_text_gb"] == round(s["shuffle_write_bytes"] / s["text_bytes"] * 1e9)
    assert s["shuffle_bytes_per_input_file_gb"] == round(s["shuffle_write_bytes"] / s["input_file_bytes"] * 1e9)


def test_steps_can_be_switched_off(spark, cfg_factory, tmp_path):
    docs = [d for s in range(200, 210) for d in make_corpus(s, 4)]
    cfg = cfg_factory("run.audit=full", "dedup_exact.k=4", "dedup_exact.url_dedup=false",
                      "dedup_exact.substring_dedup=false", "dedup_exact.url_keep=earliest")
    got, manifest = run_and_compare(spark, cfg, docs, tmp_path, n_parts=2)
    assert set(manifest["counts"]["removed"]) == {"duplicate_text"}
    assert all(r.removed_chars == 0 for r in got.values())


def test_substring_step_alone(spark, cfg_factory, tmp_path):
    """Only step 3: the input is read by two branches of the plan, and is still counted once."""
    docs = [d for s in range(300, 315) for d in make_corpus(s, 5)]
    cfg = cfg_factory("run.audit=full", "dedup_exact.k=5", "dedup_exact.url_dedup=false", "dedup_exact.doc_dedup=false")
    got, manifest = run_and_compare(spark, cfg, docs, tmp_path, n_parts=4)
    assert set(manifest["counts"]["removed"]) <= {"exact_substring_removed"}
    assert any(r.removed_chars for r in got.values())
    assert manifest["stats"]["text_bytes"] == sum(len((d["text"] or "").encode()) for d in docs)
    assert manifest["stats"]["tokens"] == sum(len(tokens_regex(d["text"] or "")) for d in docs)


def test_url_keep_rule_default_latest_and_configurable(spark, cfg_factory, tmp_path):
    """One page under four spellings of its URL: the default keeps the latest crawl, the others as configured;
    a page without a crawl date never wins a date rule."""
    docs = [{"id": "u1", "url": "http://ex.example/p", "warc_date": "2023-01-01T00:00:00Z", "text": "one " * 10},
            {"id": "u2", "url": "https://EX.example/p/?utm_source=x", "warc_date": "2025-01-01T00:00:00Z",
             "text": "two " * 10},
            {"id": "u3", "url": "http://ex.example:80/p#top", "warc_date": "2024-01-01T00:00:00Z",
             "text": "three is the longest " * 10},
            {"id": "u4", "url": "http://ex.example/p", "warc_date": None, "text": "four " * 10},
            {"id": "other", "url": "http://ex.example/q", "warc_date": "2020-01-01T00:00:00Z", "text": "five " * 10}]
    for rule, keeper in ((None, "u2"), ("earliest", "u1"), ("longest", "u3")):
        sets = ["run.audit=full", "dedup_exact.substring_dedup=false"] + ([f"dedup_exact.url_keep={rule}"] if rule else [])
        cfg = cfg_factory(*sets)
        assert cfg.dedup_exact.url_keep == (rule or "latest")
        got, manifest = run_and_compare(spark, cfg, docs, tmp_path / (rule or "default"), n_parts=2)
        assert sorted(i for i, r in got.items() if r.reason is None) == sorted([keeper, "other"]), rule
        assert manifest["counts"]["removed"] == {"duplicate_url": 3}
        rej = read_rejects(Storage(cfg.storage), str(tmp_path / (rule or "default") / "out")).to_pylist()
        assert {json.loads(r["details"])["duplicate_of"] for r in rej} == {keeper}
