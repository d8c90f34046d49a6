"""`mdr` from a user's seat: help that explains, errors that say what to fix, documented exit codes."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def mdr(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_explains_commands_config_and_exit_codes():
    r = mdr("--help")
    assert r.returncode == 0
    for word in ("run", "stage", "status", "config", "sample", "exit codes", "--set key=value"):
        assert word in r.stdout
    r = mdr("run", "--help")
    assert r.returncode == 0 and "--input" in r.stdout and "--master" in r.stdout and "--force" in r.stdout


def test_bad_config_exits_2_before_any_work():
    r = mdr("run", "--input", "nowhere", "--set", "extract.langid.min_score=2")
    assert r.returncode == 2
    assert "extract.langid.min_score: 2.0 is out of range" in r.stderr
    r = mdr("stage", "nosuchstage", "--input", "a", "--output", "b")
    assert r.returncode == 2 and "available stages: extract" in r.stderr
    r = mdr("run")
    assert r.returncode == 2 and "pass --input" in r.stderr


def test_missing_input_exits_3_naming_the_path(tmp_path):
    r = mdr("stage", "extract", "--input", str(tmp_path / "missing.warc.gz"), "--output", str(tmp_path / "o"),
            "--set", "extract.url_filter.enabled=false")
    assert r.returncode == 3
    assert "missing.warc.gz" in r.stderr and "check the input path" in r.stderr


def test_unreadable_language_model_exits_3(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"not a model")
    warc = tmp_path / "x.warc.gz"
    warc.write_bytes(b"")
    r = mdr("stage", "extract", "--input", str(warc), "--output", str(tmp_path / "o"),
            "--set", "extract.url_filter.enabled=false", "--set", f"extract.langid.model_uri={bad}", timeout=300)
    assert r.returncode == 3
    assert "not a fastText model" in r.stderr and str(bad) in r.stderr


def test_http_input_outside_allowed_bases_is_refused(tmp_path):
    r = mdr("stage", "extract", "--input", "http://127.0.0.1:9/evil.warc.gz", "--output", str(tmp_path / "o"),
            "--set", "extract.url_filter.enabled=false", timeout=300)
    assert r.returncode == 3
    assert "not under an allowed HTTP base URL" in r.stderr


def _row(out: str, label: str, bits: int) -> list[str]:
    """The numbers of a row of the false-merge table (and its ``<- configured`` mark, if any)."""
    line = next(x for x in out.splitlines()
                if x.strip().startswith(label) and x.split()[len(label.split())] == str(bits))
    return line[len("  ") + 36:].split()[1:]


def test_scurve_prints_expected_false_merges_at_crawl_scale():
    r = mdr("scurve")
    assert r.returncode == 0, r.stderr
    # refinedweb: 1e9 docs x 450 bands, one key space: 1e9 (1e9-1)/2 * 450^2 / 2^64 = 5,489; x100 at 1e10
    assert _row(r.stdout, "refinedweb (450 bands)", 64) == ["5.49e+03", "5.49e+05"]
    assert _row(r.stdout, "refinedweb (450 bands)", 128) == ["2.98e-16", "2.98e-14", "<-", "configured"]
    assert _row(r.stdout, "fineweb (14 bands)", 64) == ["5.31", "531"]
    assert _row(r.stdout, "dedup_fuzzy graph nodes (part, row)", 64) == ["0", "0"]  # positions, not hashes
    assert _row(r.stdout, "documents", 128) == ["1.47e-21", "1.47e-19"]
    # windows: W = n x 1,000 tokens: (1e12)^2 / 2^65 = 27,105
    assert "W = n * 1,000 tokens per document (assumed)" in r.stdout
    assert _row(r.stdout, "windows (k=50)", 64) == ["2.71e+04", "2.71e+06", "<-", "configured"]
    assert _row(r.stdout, "windows (k=50)", 128) == ["1.47e-15", "1.47e-13"]
    r = mdr("scurve", "--config", "fineweb", "--set", "dedup_fuzzy.key_bits=128", "--set", "dedup_exact.hash_bits=128",
            "--tokens-per-doc", "500")
    assert r.returncode == 0, r.stderr
    assert _row(r.stdout, "fineweb (14 bands)", 128) == ["2.88e-19", "2.88e-17", "<-", "configured"]
    assert _row(r.stdout, "refinedweb (450 bands)", 64) == ["5.49e+03", "5.49e+05"]
    assert _row(r.stdout, "windows (k=50)", 64) == ["6.78e+03", "6.78e+05"]   # (5e11)^2 / 2^65
    assert _row(r.stdout, "windows (k=50)", 128)[2:] == ["<-", "configured"]
    r = mdr("scurve", "--set", "dedup_fuzzy.preset=custom", "--set", "dedup_fuzzy.num_hashes=200",
            "--set", "dedup_fuzzy.bands=20", "--set", "dedup_fuzzy.rows=10", "--set", "dedup_fuzzy.key_bits=64")
    assert _row(r.stdout, "configured (20 bands)", 64) == ["10.8", "1.08e+03", "<-", "configured"]


def test_config_prints_every_key_with_doc():
    r = mdr("config", "--set", "extract.timeout_s=3")
    assert r.returncode == 0
    assert "timeout_s: 3.0  # per-page extraction time limit" in r.stdout


def test_scurve_prints_the_configured_presets_curve_and_50_percent_point():
    r = mdr("scurve")
    assert r.returncode == 0
    assert "5ng_450b_20r_9000h" in r.stdout and "50% point: J = 0.7234" in r.stdout and "0.80     0.9946" in r.stdout
    r = mdr("scurve", "--config", "fineweb", "--jaccard", "0.5", "0.8")
    assert r.returncode == 0 and "5ng_14b_8r_112h" in r.stdout and "50% point: J = 0.6847" in r.stdout
    assert r.stdout.split("\n\n")[0].count("\n") == 4  # title, header, two points, 50% point
    r = mdr("scurve", "--set", "dedup_fuzzy.bands=20")
    assert r.returncode == 2 and "bands x rows must equal num_hashes" in r.stderr


ENGINE_NOISE = ("log4j", "WARN", "core_worker", "Ray Data", "token", "Progress bars", "Setting default log level",
                "Warning:", "Traceback")


@pytest.mark.slow
def test_a_first_run_prints_only_mdrs_own_lines(tmp_path):
    """The README's first run (the sample, local Spark and a local Ray): engine start-up banners, warnings and
    worker logs stay off the terminal; mdr's progress lines, the funnel and where the report is are all there."""
    assert mdr("sample", str(tmp_path / "sample.warc.gz")).returncode == 0
    r = mdr("run", "--config", "sample", "--set", f"extract.url_filter.blocklist_uri={tmp_path}/blocklist",
            "--input", str(tmp_path / "sample.warc.gz"), "--output", str(tmp_path / "out"), timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    noisy = [line for line in lines if any(word.lower() in line.lower() for word in ENGINE_NOISE)]
    assert noisy == [], noisy
    # every line is mdr's own: "[stage] ..." progress and commits, "[spark]"/"[ray]"/"[report]" notes, the summary
    assert all(line.startswith(("[", "funnel: ", "done: ", "report: ", "dataset card: ")) for line in lines), lines
    for stage in ("extract", "filter", "dedup_fuzzy", "dedup_exact", "quality"):
        assert any(line.startswith(f"[{stage}] committed ") for line in lines), stage
    assert ("funnel: 432 WARC records, 143 HTTP responses -> 100 after extract -> 89 after filter -> "
            "68 after dedup_fuzzy -> 68 after dedup_exact -> 68 after quality") in lines
    assert any(line.startswith("[extract] committed 100 rows") and "in=143 HTTP responses of 432 WARC records" in line
               for line in lines)

    # --verbose: the engines' own lines are shown (here Spark's log4j start-up), mdr's lines as before
    r = mdr("stage", "extract", "--verbose", "--config", "sample", "--set",
            f"extract.url_filter.blocklist_uri={tmp_path}/blocklist", "--input", str(tmp_path / "sample.warc.gz"),
            "--output", str(tmp_path / "verbose"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "log4j" in r.stderr
    assert any(line.startswith("[extract] committed 100 rows") for line in r.stderr.splitlines())
