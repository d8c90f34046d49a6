"""The README's main command, in process: the bundled sample through every configured stage in local mode."""
import pytest

from pipeline.cli import main as mdr
from pipeline.core.config import load_config
from pipeline.core.dataset import read_dataset, read_rejects
from pipeline.core.storage import Storage
from pipeline.run.runner import run_pipeline


@pytest.fixture(scope="module")
def sample_run(spark, tmp_path_factory):
    d = tmp_path_factory.mktemp("local")
    assert mdr(["sample", str(d / "sample.warc.gz")]) == 0
    cfg = load_config("sample", [f"extract.url_filter.blocklist_uri={d}/blocklist"])
    manifests = run_pipeline(cfg, input_uri=str(d / "sample.warc.gz"), output_root=str(d / "out"))
    return cfg, d, manifests


def test_every_stage_conserves_and_chains(sample_run):
    cfg, d, manifests = sample_run
    assert [m["stage"] for m in manifests] == cfg.run.stages
    prev_kept = None
    for m in manifests:
        c = m["counts"]
        assert c["in"] == c["kept"] + sum(c["removed"].values()), m["stage"]
        assert m["rows"] == c["kept"] == read_dataset(Storage(), str(d / "out" / m["stage"])).num_rows
        if prev_kept is not None:
            assert c["in"] == prev_kept, m["stage"]  # each stage reads exactly what the previous one kept
        prev_kept = c["kept"]


def test_extract_on_the_sample(sample_run):
    _, d, manifests = sample_run
    m = manifests[0]
    assert m["stage"] == "extract"
    # 432 records: warcinfo, 144 requests, 143 responses, 143 metadata, 1 revisit; the responses are the documents
    assert m["stats"]["records"] == 432
    assert m["stats"]["records_by_type"] == {"metadata": 143, "request": 144, "response": 143, "revisit": 1,
                                             "warcinfo": 1}
    assert m["counts"]["in"] == 143 and m["counts"]["kept"] == 100
    removed = m["counts"]["removed"]
    assert "not_response" not in removed
    assert removed["url_blocklist_domain"] == 5     # the sample's gambling and adult domains
    assert removed["http_status"] == 2              # the 404 and the 301
    assert removed["not_html"] == 3                 # PNG, PDF, text/plain
    assert removed["binary_payload"] == 1           # random bytes labelled text/html
    # de, fr, es, ja, zh, ru pages and one more: most are skipped by the pre-screen before extraction
    lang = ("lang_prescreen", "lang_mismatch", "lang_low_score")
    assert sum(removed.get(r, 0) for r in lang) == 32 and removed["lang_prescreen"] >= 20
    t = read_dataset(Storage(), str(d / "out" / "extract"))
    assert set(t.column("lang").to_pylist()) == {"en"}
    texts = " ".join(t.column("text").to_pylist())
    assert "We use cookies to improve your experience" not in texts  # boilerplate gone
    rejects = read_rejects(Storage(), str(d / "out" / "extract"))
    assert rejects.num_rows == sum(removed.values())


def test_status_shows_every_stage(sample_run, capsys):
    cfg, d, _ = sample_run
    assert mdr(["status", str(d / "out")]) == 0
    out = capsys.readouterr().out
    for name in cfg.run.stages:
        assert name in out
    assert "committed" in out


def test_second_run_is_a_noop(sample_run, capsys):
    cfg, d, manifests = sample_run
    again = run_pipeline(cfg, input_uri=str(d / "sample.warc.gz"), output_root=str(d / "out"))
    assert [m["timings"] for m in again] == [m["timings"] for m in manifests]
    assert capsys.readouterr().err.count("nothing to do") == len(manifests)
