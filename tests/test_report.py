"""What users see, on a real local run of the sample: report.json numbers, report.html in Chromium, the dataset
card and its loading code, `mdr explain` for a document removed by each kind of stage, and `mdr export`."""
import contextlib
import gzip
import io
import json
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline.cli import main as mdr
from pipeline.core.config import load_config
from pipeline.core.dataset import STAGE_ORDER, read_dataset, read_manifest, read_rejects
from pipeline.core.profile import SAMPLE_CHARS, length_bin
from pipeline.core.storage import Storage
from pipeline.reports.explain import explain
from pipeline.reports.report import write_report
from pipeline.run.runner import registry, run_stage

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
STAGES = [s for s in ("extract", "filter", "dedup_fuzzy", "dedup_exact", "quality") if s in registry()]
# every chart the report of a full run must draw (issue 9), checked in report.json and in Chromium
FULL_RUN_CHARTS = ("chart-funnel", "chart-removed", "chart-languages", "chart-lengths", "chart-clusters",
                   "chart-score-quality-quality_score", "chart-domains", "chart-timings")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    """`mdr run` on the bundled sample through all five stages (quality on a local Ray, the bundled demo model);
    returns (root, stdout)."""
    d = tmp_path_factory.mktemp("report")
    assert mdr(["sample", str(d / "sample.warc.gz")]) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = mdr(["run", "--config", "sample", "--set", f"extract.url_filter.blocklist_uri={d}/blocklist",
                  "--set", f"run.stages=[{','.join(STAGES)}]",
                  # every rejected document keeps its text, so each reason's examples show their first lines;
                  # the demo model scores the sample's pages 0.76-0.99, so at 0.8 quality removes a few
                  "--set", "run.audit=full", "--set", "quality.threshold=0.8",
                  "--input", str(d / "sample.warc.gz"), "--output", str(d / "out")])
    assert rc == 0
    yield d / "out", out.getvalue()
    if "quality" in STAGES:
        import ray
        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture(scope="module")
def report(run):
    root, _ = run
    return json.loads((root / "report.json").read_text())


def manifests(root: Path) -> dict:
    return {s: read_manifest(Storage(), str(root / s)) for s in STAGES}


# --------------------------------------------------------------------------- the run's outputs

def test_run_ends_by_printing_where_the_report_is(run):
    root, stdout = run
    assert f"report: {root}/report.html" in stdout
    assert f"dataset card: {root}/README.md" in stdout
    kept = " -> ".join(f"{manifests(root)[s]['counts']['kept']} after {s}" for s in STAGES)
    assert f"funnel: 432 WARC records, 143 HTTP responses -> {kept}\n" in stdout
    assert kept.startswith("100 after extract -> 89 after filter -> 68 after dedup_fuzzy -> 68 after dedup_exact")
    assert (root / "report.html").stat().st_size > 1_000_000       # plotly.js is inside: no network needed
    tags = _Tags()
    tags.feed((root / "report.html").read_text())
    assert tags.scripts >= 2 and tags.external == []               # plotly.js inline, nothing fetched


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.external = 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.scripts += tag == "script"
        if (tag in ("script", "img", "iframe") and a.get("src")) or (tag == "link" and a.get("href")):
            self.external.append((tag, a))


def test_report_numbers_are_the_data(run, report):
    root, _ = run
    store = Storage()
    mans = manifests(root)
    assert [s["stage"] for s in report["stages"]] == STAGES
    first = mans[STAGES[0]]["counts"]
    # the funnel starts at the HTTP responses; the WARC records around them are counted apart, by type
    assert report["warc_records"] == {"records": 432, "http_responses": 143, "by_type": {
        "metadata": 143, "request": 144, "response": 143, "revisit": 1, "warcinfo": 1}}
    funnel = report["funnel"]
    assert funnel[0] == {"step": "HTTP responses", "stage": None, "docs": 143, "chars": None, "docs_share": 1.0}
    assert first["in"] == 143 and first["in"] == first["kept"] + sum(first["removed"].values())
    assert [s["docs"] for s in funnel][:5] == [143, 100, 89, 68, 68][:len(funnel)]  # quality at 0.8 removes a few
    for step, stage in zip(funnel[1:], STAGES):
        kept = read_dataset(store, str(root / stage))
        texts = kept.column("text").to_pylist()
        assert step["docs"] == kept.num_rows == mans[stage]["rows"]
        assert step["chars"] == sum(len(t) for t in texts)            # characters kept after the stage
        assert step["docs_share"] == round(kept.num_rows / 143, 6)
        assert report["removed"][stage] == mans[stage]["counts"]["removed"]
        hist = report["lengths"][stage]
        want = Counter(length_bin(len(t)) for t in texts)
        assert {k: n for k, n in zip(hist["k"], hist["counts"]) if n} == dict(want)
        assert all(lo <= hi for lo, hi in hist["bins"]) and sum(hist["counts"]) == kept.num_rows
        assert report["languages"]["kept"][stage] == dict(Counter(kept.column("lang").to_pylist()))
        assert report["timings"][stage] == mans[stage]["timings"]["seconds"]
    # languages of the pages removed for their language, from the rejects' details
    rej = read_rejects(store, str(root / "extract")).to_pylist()
    seen = set()
    for reason in ("lang_prescreen", "lang_mismatch"):  # before extraction (pre-screen) and after it
        langs = Counter(json.loads(r["details"])["lang"] for r in rej if r["reason"] == reason)
        assert report["languages"]["removed"].get(f"extract: {reason}", {}) == dict(langs)
        seen |= set(langs)
    assert {"de", "fr", "es", "ja", "zh", "ru"} <= seen
    if "filter" in STAGES:   # what PII redaction replaced in the kept documents, from the filter manifest
        pii = mans["filter"]["stats"]["pii"]
        assert report["pii"] == pii and pii["kinds"] == ["email", "ip"]
        assert pii["documents_redacted"] <= mans["filter"]["counts"]["kept"]
        html = (root / "report.html").read_text()
        assert f"PII redaction (filter stage): email {pii['email']:,}, ip {pii['ip']:,} replaced in " \
               f"{pii['documents_redacted']:,} kept documents" in html


def test_report_samples_and_domains_come_from_the_rejects(run, report):
    root, _ = run
    store = Storage()
    page = (root / "report.html").read_text()
    by_domain: Counter = Counter()
    with_text = 0
    for stage in STAGES:
        rows = read_rejects(store, str(root / stage)).to_pylist()
        by_id = {r["id"]: r for r in rows}
        for reason, n in manifests(root)[stage]["counts"]["removed"].items():
            got = report["samples"][stage][reason]
            assert 1 <= len(got) <= 3
            for s in got:  # each sample is a real reject of that reason, with its details
                assert by_id[s["id"]]["reason"] == reason and by_id[s["id"]]["url"] == s["url"]
                assert s["details"] == (json.loads(by_id[s["id"]]["details"]) if by_id[s["id"]]["details"] else {})
                assert s["text"] == ((by_id[s["id"]]["text"] or "")[:SAMPLE_CHARS] or None)
            if any(r["text"] for r in rows if r["reason"] == reason):   # documents with text show their first lines
                first = next(line for line in got[0]["text"].splitlines() if line.strip())
                assert escape(first, quote=True) in page, (stage, reason)
                with_text += 1
        by_domain.update(urlsplit(r["url"]).hostname for r in rows if r["url"])
    assert with_text >= 8          # run.audit=full: filter, dedup and quality reasons all show text
    top = report["top_removed_domains"]
    assert top and [d["removed"] for d in top] == sorted((d["removed"] for d in top), reverse=True)
    for d in top:
        assert d["removed"] == by_domain[d["domain"]] == sum(d["by_reason"].values())
    domains = manifests(root)["extract"]["profile"]["removed"]["domains"]
    blocked = {d for d, by_reason in domains.items() if "url_blocklist_domain" in by_reason}
    listed = {line.strip() for f in (root.parent / "blocklist").glob("*/domains") for line in f.read_text().split()}
    assert len(blocked) == 5                                 # the sample's gambling and adult sites (or www. of them)
    assert all(any(b == x or b.endswith("." + x) for x in listed) for b in blocked)


def test_report_charts_cover_every_stage(report):
    charts = report["charts"]
    for c in ("chart-funnel", "chart-removed", "chart-languages", "chart-lengths", "chart-domains", "chart-timings"):
        assert c in charts
    if STAGES == list(STAGE_ORDER):                         # a full run draws every chart issue 9 lists
        assert set(FULL_RUN_CHARTS) <= set(charts)
        assert {"extract", "filter"} <= set(report["lengths"])   # lengths before and after filtering
        assert all(s["chars"] is not None for s in report["funnel"][2:])  # characters beside documents
    if "dedup_fuzzy" in STAGES:
        assert "chart-clusters" in charts
        c = report["duplicate_clusters"]
        assert sum(c["sizes"].values()) == c["components"] > 0
        assert c["docs_in_components"] - c["components"] == report["removed"]["dedup_fuzzy"]["fuzzy_duplicate"]
    score = next(s for s in report["scores"] if s["stage"] == "extract" and s["score"] == "lang_score")
    assert f"chart-score-extract-lang_score" in charts
    assert score["threshold"] == 0.65                      # from extract's params (min_lang_score)
    assert sum(score["kept"]) == report["stages"][0]["kept"]
    assert sum(score["removed"]["lang_low_score"]) == report["removed"]["extract"]["lang_low_score"]
    assert all(i >= 13 for i, n in enumerate(score["kept"]) if n)   # kept pages are all at 0.65 or more


def test_report_reads_only_manifests(run, report, tmp_path):
    """The same report from the manifests alone: no part file is needed, so a huge run reports in seconds."""
    root, _ = run
    bare = tmp_path / "bare"
    for stage in STAGES:
        (bare / stage).mkdir(parents=True)
        shutil.copy(root / stage / "_manifest.json", bare / stage / "_manifest.json")
    write_report(Storage(), str(bare))
    again = json.loads((bare / "report.json").read_text())
    for key in ("funnel", "removed", "languages", "lengths", "duplicate_clusters", "scores", "top_removed_domains",
                "timings", "samples", "charts"):
        assert again[key] == report[key], key


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chart_doms(dom: str) -> dict[str, str]:
    """The rendered DOM of each chart, cut at the wrappers report_html puts around them."""
    at = [(m.start(), m.group(1)) for m in re.finditer(r'<div class="mdr-chart" data-chart="([^"]+)"', dom)]
    return {cid: dom[a:b] for (a, cid), (b, _) in zip(at, at[1:] + [(dom.find("<h2>", at[-1][0]), None)])}


def _expected_traces(report: dict) -> dict[str, int]:
    """How many traces plotly must draw in each chart, from the numbers (legend-only traces are not drawn)."""
    reasons = {r for by in report["removed"].values() for r in by}
    langs = report["languages"]
    want = {"chart-funnel": 1 + any(s["chars"] is not None for s in report["funnel"]),
            "chart-removed": len(reasons),
            "chart-languages": len(langs["kept"]) + len(langs["removed"]),
            "chart-lengths": len(report["lengths"]), "chart-clusters": 1, "chart-timings": 1,
            "chart-domains": len({k for d in report["top_removed_domains"] for k in d["by_reason"]})}
    for sc in report["scores"]:
        want[f"chart-score-{sc['stage']}-{sc['score']}"] = 1 + len(sc["removed"])
    return {c: n for c, n in want.items() if c in report["charts"]}


def test_report_renders_in_headless_chromium(run, report):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); report.html not rendered")
    root, _ = run
    url = (root / "report.html").as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                              "--virtual-time-budget=15000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=240)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], "console messages while rendering report.html:\n" + "\n".join(console)
    drawn = _chart_doms(dom.stdout)
    assert list(drawn) == report["charts"]
    want = _expected_traces(report)
    for chart, seg in drawn.items():
        assert seg.count(f'id="{chart}"') == 1, f"{chart}: no chart div"
        assert 'class="main-svg"' in seg, f"{chart}: plotly drew no SVG"
        traces = re.findall(r'<g class="trace (\w+)[ "]', seg)
        assert len(traces) == want[chart] > 0, f"{chart}: {len(traces)} traces drawn, {want[chart]} expected"
        assert 'class="point"' in seg or 'class="js-line"' in seg, f"{chart}: no bar or line drawn"
    timings = re.findall(r'<g class="point"', drawn["chart-timings"])
    assert len(timings) == len(STAGES)                                   # one bar per stage
    for sc in report["scores"]:                                          # the threshold line and its label
        seg = drawn[f"chart-score-{sc['stage']}-{sc['score']}"]
        if sc["threshold"] is None:
            assert 'class="shape-group"' not in seg
            continue
        assert re.search(r'<g class="shape-group"[^>]*><path[^>]*stroke: rgb\(220, 20, 60\)', seg), sc["score"]
        assert f'data-unformatted="threshold {sc["threshold"]:g}"' in seg, sc["score"]
    if STAGES == list(STAGE_ORDER):
        assert set(FULL_RUN_CHARTS) <= set(drawn)
        assert 'data-unformatted="threshold 0.8"' in drawn["chart-score-quality-quality_score"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    if shot.exists():
        shot.unlink()
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--hide-scrollbars",
                            "--window-size=1400,6000", "--virtual-time-budget=15000", f"--screenshot={shot}", url],
                           capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_status_table(run, tmp_path, capsys):
    root, _ = run
    assert mdr(["status", str(root)]) == 0
    out = capsys.readouterr().out
    mans = manifests(root)
    for stage in STAGES:
        chars = mans[stage]["profile"]["kept"]["chars"]
        assert re.search(rf"{stage} .*committed.*{mans[stage]['counts']['kept']:,}.*{chars:,}", out), stage
    assert f"report.html: {root}/report.html" in out
    assert "extract read 432 WARC records, 143 HTTP responses" in out
    if "filter" in STAGES:
        pii = mans["filter"]["stats"]["pii"]
        assert f"PII redaction (filter): email {pii['email']:,}, ip {pii['ip']:,} replaced in " \
               f"{pii['documents_redacted']:,} kept documents" in out
    # a stage that stopped half-way says how many of its tasks are done
    half = tmp_path / "half"
    (half / "extract" / "_tasks").mkdir(parents=True)
    for i in range(3):
        (half / "extract" / "_tasks" / f"task-{i:05d}.json").write_text("{}")
    assert mdr(["status", str(half)]) == 0
    assert "partial (resumable; 3 tasks done)" in capsys.readouterr().out


# --------------------------------------------------------------------------- explain

def _one_reject(root: Path, stage: str, reason: str) -> dict:
    rows = [r for r in read_rejects(Storage(), str(root / stage)).to_pylist() if r["reason"] == reason]
    assert rows, f"{stage} removed nothing as {reason}"
    return sorted(rows, key=lambda r: r["id"])[0]


@pytest.mark.parametrize("reason,check", [
    ("lang_prescreen", lambda d: d["lang"] != "en" and d["lang_score"] >= 0.8 and d["target_score"] < 0.05),
    ("binary_payload", lambda d: "content_type" in d),
    ("http_status", lambda d: d["status"] in (301, 404)),
    ("url_blocklist_domain", lambda d: d),
    ("lang_low_score", lambda d: d["lang_score"] < 0.65),
])
def test_explain_documents_removed_by_extract(run, reason, check):
    root, _ = run
    r = _one_reject(root, "extract", reason)
    result = explain(Storage(), str(root), r["url"])                # users look pages up by URL
    doc = next(d for d in result["documents"] if d["id"] == r["id"])
    assert (doc["outcome"], doc["stage"], doc["reason"]) == ("removed", "extract", reason)
    step = doc["steps"][-1]
    assert check(step["details"])
    assert len(doc["steps"]) == 1                                    # later stages never saw it
    if reason == "lang_low_score":
        lim = next(x for x in step["limits"] if x["score"] == "lang_score")
        assert (lim["limit"], lim["kind"], lim["param"], lim["failed"]) == (0.65, "min", "min_lang_score", True)


def test_explain_holds_each_score_to_its_configured_limit():
    import dataclasses

    from pipeline.reports.explain import limits
    params = dataclasses.asdict(load_config().filter)
    got = {(x["score"], x["param"]): (x["limit"], x["failed"]) for x in limits(
        {"dup_line_frac": 0.9, "top_2_gram_char_frac": 0.1, "dup_7_gram_char_frac": 0.2, "n_words": 12,
         "ellipsis_ratio": 0.5, "line_removed_words_share": 0.04, "lang": "en"}, params)}
    assert got == {("dup_line_frac", "repetition.max_dup_line_frac"): (0.3, True),
                   ("top_2_gram_char_frac", "repetition.max_top_ngram_char_frac.2"): (0.2, False),
                   ("dup_7_gram_char_frac", "repetition.max_dup_ngram_char_frac.7"): (0.13, True),
                   ("n_words", "quality.min_words"): (50, True),
                   ("n_words", "quality.max_words"): (100_000, False),
                   ("ellipsis_ratio", "quality.max_symbol_word_ratio"): (0.1, True),
                   ("line_removed_words_share", "lines.max_removed_words_share"): (0.05, False)}
    q = limits({"quality_score": 0.31, "quality_label": "lq", "threshold": 0.5}, {"threshold": 0.5})
    assert [(x["score"], x["limit"], x["kind"], x["failed"]) for x in q] == [("quality_score", 0.5, "min", True)]


@pytest.mark.skipif("filter" not in STAGES, reason="no filter stage yet")
def test_explain_a_document_removed_by_the_filter(run):
    root, _ = run
    rej = read_rejects(Storage(), str(root / "filter")).to_pylist()
    r = sorted((x for x in rej if x["reason"] == "gopher_dup_line_frac"), key=lambda x: x["id"])[0]
    doc = explain(Storage(), str(root), r["id"])["documents"][0]
    assert [s["outcome"] for s in doc["steps"]] == ["kept", "removed"]
    step = doc["steps"][-1]
    assert (step["stage"], step["reason"]) == ("filter", "gopher_dup_line_frac")
    lim = next(x for x in step["limits"] if x["score"] == "dup_line_frac")
    assert lim["param"] == "repetition.max_dup_line_frac" and lim["kind"] == "max" and lim["failed"]
    assert lim["value"] == step["details"]["dup_line_frac"] > lim["limit"] == 0.3
    assert step["text_head"]                                         # the text as extract kept it


@pytest.mark.skipif("dedup_fuzzy" not in STAGES, reason="no dedup_fuzzy stage yet")
def test_explain_a_fuzzy_duplicate_with_both_texts_similarity(run):
    root, _ = run
    r = _one_reject(root, "dedup_fuzzy", "fuzzy_duplicate")
    doc = explain(Storage(), str(root), r["id"])["documents"][0]
    step = doc["steps"][-1]
    assert (doc["outcome"], step["stage"], step["reason"]) == ("removed", "dedup_fuzzy", "fuzzy_duplicate")
    dup = step["duplicate"]
    assert dup["duplicate_of"] == json.loads(r["details"])["duplicate_of"]
    kept_ids = set(read_dataset(Storage(), str(root / "dedup_fuzzy")).column("id").to_pylist())
    assert dup["duplicate_of"] in kept_ids
    sim = dup["similarity"]
    assert sim["minhash"] == "5ng_450b_20r_9000h_128bit"   # dedup_fuzzy.key_bits=128 by default
    assert sim["jaccard"] > 0.5 and abs(sim["minhash_estimate"] - sim["jaccard"]) < 0.05  # 9000 hashes: +-0.01


def test_similarity_reads_the_minhash_name_of_either_key_width():
    from pipeline.reports.explain import similarity
    a = " ".join(f"w{i}" for i in range(300))
    b = a.replace("w150 ", "x ")
    for name in ("5ng_14b_8r_112h", "5ng_14b_8r_112h_128bit"):
        sim = similarity(a, b, name)
        assert sim["minhash"] == name and 0.9 < sim["jaccard"] < 1
        assert abs(sim["minhash_estimate"] - sim["jaccard"]) < 0.1


def test_explain_a_kept_document_and_the_cli(run, capsys):
    root, _ = run
    final = read_dataset(Storage(), str(root / STAGES[-1]))
    doc_id, url = final.column("id")[0].as_py(), final.column("url")[0].as_py()
    doc = explain(Storage(), str(root), doc_id)["documents"][0]
    assert doc["outcome"] == "kept" and [s["outcome"] for s in doc["steps"]] == ["kept"] * len(STAGES)
    assert doc["steps"][0]["columns"]["lang"] == "en"
    assert mdr(["explain", str(root), url]) == 0
    out = capsys.readouterr().out
    assert doc_id in out and "kept to the end" in out
    r = _one_reject(root, "extract", "http_status")
    assert mdr(["explain", str(root), r["url"], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert any(d["reason"] == "http_status" for d in got["documents"])
    assert mdr(["explain", str(root), "https://nowhere.example/"]) == 1


@pytest.mark.skipif("dedup_exact" not in STAGES, reason="no dedup_exact stage yet")
def test_explain_documents_removed_by_exact_dedup(spark, tmp_path):
    """The sample has no exact duplicates left by dedup_exact's turn, so a small corpus of its own: one document
    removed by each of its three steps (URL, text hash, 50-token spans)."""
    words = " ".join(f"w{i}" for i in range(120))
    span = " ".join(f"v{i}" for i in range(60))
    docs = [
        {"id": "a1", "url": "https://ex.example/p?utm_source=x", "text": "first copy " + words},
        {"id": "a2", "url": "https://ex.example/p", "text": "second copy " + words + " more"},
        {"id": "b1", "url": "https://b.example/1", "text": "same text " + " ".join(f"t{i}" for i in range(40))},
        {"id": "b2", "url": "https://b.example/2", "text": "same text " + " ".join(f"t{i}" for i in range(40))},
        {"id": "c1", "url": "https://c.example/1", "text": "unique words " + " ".join(f"u{i}" for i in range(80))},
        {"id": "d1", "url": "https://d.example/1", "text": span},
        {"id": "d2", "url": "https://d.example/2", "text": span + " tail"},   # whichever comes later is cut to < 5 tokens
    ]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    root = tmp_path / "run"
    cfg = load_config(None, [])
    m = run_stage(cfg, "dedup_exact", str(src), str(root / "dedup_exact"), spark=spark)
    assert m["counts"]["removed"] == {"duplicate_url": 1, "duplicate_text": 1, "exact_substring_removed": 1}
    by_url = explain(Storage(), str(root), "https://ex.example/p")["documents"]
    removed = next(d for d in by_url if d["outcome"] == "removed")
    step = removed["steps"][-1]
    assert step["reason"] == "duplicate_url" and step["details"]["url_key"]
    assert {removed["id"], step["duplicate"]["duplicate_of"]} == {"a1", "a2"}
    assert not step["duplicate"]["similarity"]["identical"] and step["duplicate"]["similarity"]["jaccard"] > 0.9
    b = explain(Storage(), str(root), "b2")["documents"] + explain(Storage(), str(root), "b1")["documents"]
    text_dup = next(d for d in b if d["outcome"] == "removed")["steps"][-1]
    assert text_dup["reason"] == "duplicate_text" and text_dup["duplicate"]["similarity"]["identical"]
    d = explain(Storage(), str(root), "d1")["documents"] + explain(Storage(), str(root), "d2")["documents"]
    assert sorted(x["outcome"] for x in d) == ["kept", "removed"]
    cut = next(x for x in d if x["outcome"] == "removed")["steps"][-1]
    assert cut["reason"] == "exact_substring_removed" and cut["details"]["exact_removed_chars"] in (len(span),
                                                                                                   len(span) + 1)
    lim = next(x for x in cut["limits"] if x["score"] == "tokens_left")
    assert (lim["limit"], lim["param"], lim["kind"], lim["failed"]) == (5, "min_tokens_after_cut", "min", True)
    assert lim["value"] == cut["details"]["tokens_left"] <= 1


# --------------------------------------------------------------------------- dataset card and export

def _code_blocks(card: str, marker: str) -> str:
    m = re.search(rf"{re.escape(marker)}:\n```python\n(.*?)```", card, re.S)
    assert m, marker
    return m.group(1)


CARD_LOADERS = ("pyarrow", "pandas", "Hugging Face `datasets`", "DuckDB")


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    """`datasets` caches under tmp and stays offline; returns the cache folder."""
    import datasets
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    return tmp_path / "hf"


def _rows_printed(card: str, marker: str) -> int:
    """Runs the card's loading snippet under heading ``marker``; the row count it prints first."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_code_blocks(card, marker), {})
    m = re.match(r"\W*(\d+)\b", out.getvalue())
    assert m, (marker, out.getvalue())
    return int(m.group(1))


def test_dataset_card(run, hf_offline):
    root, _ = run
    card = (root / "README.md").read_text()
    mans = manifests(root)
    final = STAGES[-1]
    header = card.split("---\n")[1]
    assert "license: odc-by" in header and "- en" in header
    # the Hub's config names exactly the committed parts (a glob would also read unlisted files)
    assert yaml.safe_load(header)["configs"] == [
        {"config_name": "default", "data_files": [f"{final}/{p['path']}" for p in mans[final]["parts"]]}]
    for stage in STAGES:
        c = mans[stage]["counts"]
        assert re.search(rf"\| {stage} \| {c['in']:,} \| {c['kept']:,} \|", card), stage
        assert mans[stage]["config_hash"] in card
    assert "- 1 input files (432 WARC records, 143 HTTP responses):" in card
    assert "Common Crawl crawl ids: none found" in card                   # the sample is not a CC path
    assert "sample.warc.gz" in card and "Terms of Use" in card and "ODC-By" in card
    assert f"| en | {mans[final]['rows']:,} | 100.0% |" in card
    if "filter" in STAGES:
        pii = mans["filter"]["stats"]["pii"]
        assert "## Personal data" in card and "`email@example.com`" in card and "555-555-0100" not in card
        assert f"PII redaction in the filter stage: email {pii['email']:,}, ip {pii['ip']:,} replaced in " \
               f"{pii['documents_redacted']:,} kept documents." in card
    for stage in STAGES:                                                  # stages and their parameters
        assert json.dumps(mans[stage]["params"], indent=1, sort_keys=True) in card, stage
    for field in mans[final]["schema"]:                                   # the Parquet schema, every column explained
        assert re.search(rf"^\| `{field['name']}` \| {re.escape(field['type'])} \| \S.* \|$", card, re.M), field
    # the loading code in the card runs (all four libraries are in the test extra), and finds every document of
    # the final stage
    rows = {marker: _rows_printed(card, marker) for marker in CARD_LOADERS}
    assert rows == dict.fromkeys(CARD_LOADERS, mans[final]["rows"])


def test_card_loaders_read_only_the_committed_parts(run, tmp_path, hf_offline):
    """Parquet files the manifest does not list (a failed attempt's part, a --force re-run in progress, a cleanup
    that failed) beside the final stage's parts: every loader the card shows, and `load_dataset(ROOT)` through
    its YAML header, still reads exactly the committed rows."""
    import datasets
    src, _ = run
    root = tmp_path / "out"
    shutil.copytree(src, root)
    final = STAGES[-1]
    man = read_manifest(Storage(), str(root / final))
    biggest = max(man["parts"], key=lambda p: p["rows"])
    assert biggest["rows"] > 0
    shutil.copy(root / final / biggest["path"], root / final / "part-99999-deadbeef.parquet")
    shutil.copy(root / final / biggest["path"], root / final / "_rejects" / "part-99999-deadbeef.parquet")
    assert mdr(["report", str(root)]) == 0
    card = (root / "README.md").read_text()
    rows = {marker: _rows_printed(card, marker) for marker in CARD_LOADERS}
    rows["load_dataset(ROOT)"] = datasets.load_dataset(str(root), split="train", cache_dir=str(hf_offline)).num_rows
    assert rows == dict.fromkeys(rows, man["rows"])


def test_card_crawl_ids():
    from pipeline.reports.card import crawl_ids
    man = {"input": {"uri": "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/warc.paths.gz"},
           "stats": {"inputs": [{"file": "crawl-data/CC-MAIN-2024-18/segments/1/warc/x.warc.gz"},
                                {"file": "../shared/data/warc/cc-main-2020-34-excerpt.warc.gz"}]}}
    assert crawl_ids(man) == ["CC-MAIN-2020-34", "CC-MAIN-2024-10", "CC-MAIN-2024-18"]


def test_export_jsonl_in_the_dolma_datatrove_layout(run, tmp_path, capsys):
    root, _ = run
    out = tmp_path / "export"
    assert mdr(["export", str(root), "--output", str(out)]) == 0
    final = read_dataset(Storage(), str(root / STAGES[-1]))
    summary = json.loads((out / "_export.json").read_text())
    assert summary["stage"] == STAGES[-1] and summary["rows"] == final.num_rows
    shards = sorted((out / "documents").glob("*.jsonl.gz"))
    assert [s.name for s in shards] == [f"{i:05d}.jsonl.gz" for i in range(len(shards))]
    docs = [json.loads(line) for s in shards for line in gzip.open(s, "rt", encoding="utf-8")]
    by_id = {r["id"]: r for r in final.to_pylist()}
    assert sorted(d["id"] for d in docs) == sorted(by_id)
    for d in docs:
        assert set(d) == {"id", "text", "source", "added", "created", "metadata"}
        row = by_id[d["id"]]
        assert d["text"] == row["text"] and d["source"] == "mdr" and d["created"] == row["warc_date"]
        assert d["metadata"]["url"] == row["url"] and d["metadata"]["lang"] == "en"
        assert "text" not in d["metadata"] and "id" not in d["metadata"]
    try:
        from datatrove.pipeline.readers import JsonlReader
        reader = JsonlReader(str(out / "documents"))
    except ImportError:  # datatrove (test extra) needs orjson for JSONL
        return
    read = list(reader())
    assert sorted(doc.id for doc in read) == sorted(by_id)
    assert {doc.id: doc.text for doc in read} == {k: v["text"] for k, v in by_id.items()}
    assert all(doc.metadata["url"] == by_id[doc.id]["url"] for doc in read)


def test_export_to_object_storage(run, s3_server):
    """Shards written to S3 are gzip once (the storage layer never re-compresses a .gz name)."""
    root, _ = run
    bucket = s3_server.make_bucket("mdr-export")
    assert mdr(["export", str(root), "--output", f"{bucket}/exp", "--stage", "extract"]) == 0
    client = s3_server.client()
    body = client.get_object(Bucket="mdr-export", Key="exp/documents/00000.jsonl.gz")["Body"].read()
    lines = gzip.decompress(body).decode("utf-8").splitlines()
    assert len(lines) == read_manifest(Storage(), str(root / "extract"))["rows"]
    assert json.loads(lines[0])["metadata"]["lang"] == "en"
    summary = json.loads(client.get_object(Bucket="mdr-export", Key="exp/_export.json")["Body"].read())
    assert summary["stage"] == "extract" and summary["rows"] == len(lines)


@pytest.mark.skipif("quality" not in STAGES, reason="no quality stage yet")
def test_quality_scores_in_the_report_and_explain(run, report):
    """The run's quality stage (Ray, demo model, threshold 0.8): the report draws quality_score against the
    threshold, and explain names the failed score of a document it removed."""
    root, _ = run
    store = Storage()
    kept = read_dataset(store, str(root / "quality"))
    rej = read_rejects(store, str(root / "quality")).to_pylist()
    scores = kept.column("quality_score").to_pylist()
    assert rej and all(json.loads(r["details"])["quality_score"] < 0.8 <= min(scores) for r in rej)
    assert "chart-score-quality-quality_score" in report["charts"]
    q = next(s for s in report["scores"] if s["stage"] == "quality")
    assert q["score"] == "quality_score" and q["threshold"] == 0.8
    assert sum(q["kept"]) == kept.num_rows and all(i >= 16 for i, c in enumerate(q["kept"]) if c)
    assert sum(q["removed"]["low_quality"]) == len(rej) == report["removed"]["quality"]["low_quality"]
    assert all(i < 16 for i, c in enumerate(q["removed"]["low_quality"]) if c)
    assert not any(s["stage"] == "quality" and s["score"] == "lang_score" for s in report["scores"])  # not its decision
    low = sorted(rej, key=lambda r: r["id"])[0]
    doc = explain(store, str(root), low["id"])["documents"][0]
    step = doc["steps"][-1]
    assert (doc["outcome"], step["stage"], step["reason"]) == ("removed", "quality", "low_quality")
    lim = next(x for x in step["limits"] if x["score"] == "quality_score")
    assert lim["limit"] == 0.8 and lim["failed"] and lim["value"] == json.loads(low["details"])["quality_score"]
    assert [s["outcome"] for s in doc["steps"]] == ["kept"] * (len(STAGES) - 1) + ["removed"]
    assert step["text_head"] == low["text"][:400]


def test_report_card_and_explain_on_object_storage(run, s3_server, capsys):
    """A run root in S3: `mdr report` writes report.html/json and README.md there; explain reads parts there."""
    root, _ = run
    bucket = s3_server.make_bucket("mdr-report")
    client = s3_server.client()
    for f in root.rglob("*"):
        if f.is_file() and f.name not in ("report.html", "report.json", "README.md"):
            client.upload_file(str(f), "mdr-report", f"run/{f.relative_to(root)}")
    assert mdr(["report", f"{bucket}/run"]) == 0
    out = capsys.readouterr().out
    assert f"report: {bucket}/run/report.html" in out and f"dataset card: {bucket}/run/README.md" in out
    got = json.loads(client.get_object(Bucket="mdr-report", Key="run/report.json")["Body"].read())
    local = json.loads((root / "report.json").read_text())
    assert got["funnel"] == local["funnel"] and got["charts"] == local["charts"]
    card = client.get_object(Bucket="mdr-report", Key="run/README.md")["Body"].read().decode()
    assert f"{bucket}/run/{STAGES[-1]}" in card and "INSTALL httpfs" in card
    # the card's pyarrow and pandas code reads the manifest from S3 and only the parts it lists (datasets would
    # need s3fs, DuckDB its httpfs extension from the network)
    final = STAGES[-1]
    rows = read_manifest(Storage(), f"{bucket}/run/{final}")["rows"]
    biggest = max(read_manifest(Storage(), str(root / final))["parts"], key=lambda p: p["rows"])
    client.upload_file(str(root / final / biggest["path"]), "mdr-report", f"run/{final}/part-99999-deadbeef.parquet")
    assert {m: _rows_printed(card, m) for m in ("pyarrow", "pandas")} == {"pyarrow": rows, "pandas": rows}
    r = _one_reject(root, "extract", "binary_payload")
    doc = explain(Storage(), f"{bucket}/run", r["url"])["documents"][0]
    assert (doc["id"], doc["stage"], doc["reason"]) == (r["id"], "extract", "binary_payload")
