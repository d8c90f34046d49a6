"""The quality stage on a local Ray (fractional CPUs, 2 cores) with input and output on a real S3 server (moto)."""
from __future__ import annotations

import json
import time

import pyarrow as pa
import pytest

from tests.conftest import shared_path


@pytest.fixture(scope="module")
def ray_local(s3_server):
    """Started after the S3 server, so Ray's workers inherit its endpoint and credentials."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # an in-process `mdr run` earlier in this session left one up
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _real_docs() -> list[str]:
    """Held-in and held-out Wikipedia documents plus the CC-MAIN-2020-34 excerpt's pages (spam, navigation)."""
    from pipeline.quality_training.data import pack, warc_pages, wikitext_articles
    arts = wikitext_articles(shared_path("text", "wikitext-2-valid.txt"))
    wiki = [d for _, paras in arts[:6] for d in pack(paras)][:24]
    pages = [p["text"] for p in warc_pages(shared_path("warc", "cc-main-2020-34-excerpt.warc.gz"))]
    return [d for pair in zip(wiki, pages + wiki[len(pages):]) for d in pair]


def _commit_dataset(store, root: str, texts: list[str], parts: int) -> list[str]:
    """A committed dataset with id/url/text and an extra column, as an earlier stage leaves it."""
    from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string()), ("lang", pa.string())])
    infos, ids, per = [], [], -(-len(texts) // parts)
    for p in range(parts):
        chunk = texts[p * per:(p + 1) * per]
        part_ids = [f"d{p}-{i:03d}" for i in range(len(chunk))]
        ids += part_ids
        w = PartWriter(store, root, part_path(p, "t"), schema)
        w.write(pa.table({"id": part_ids, "url": [f"https://e.org/{x}" for x in part_ids], "text": chunk,
                          "lang": ["en"] * len(chunk)}, schema=schema))
        infos.append(w.close())
    commit(store, root, build_manifest(stage="dedup_exact", config_hash="x", input_desc={}, parts=infos, rejects=[],
                                       schema=schema, counts=Counts(len(texts), len(texts)), failed_inputs=[],
                                       started=time.time()))
    return ids


def test_stage_scores_every_row_conserves_counts_and_reruns_as_noop(ray_local, s3_server, cfg_factory):
    from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    from udfs.quality import FastTextClassifier
    bucket = s3_server.make_bucket("quality-stage")
    store = Storage()
    texts = _real_docs()
    ids = _commit_dataset(store, f"{bucket}/in", texts, parts=3)
    cfg = cfg_factory("ray.actors=2", "ray.batch_size=7", "ray.cpus_per_actor=0.5", "run.audit=full")
    man = run_stage(cfg, "quality", f"{bucket}/in", f"{bucket}/out")

    c = man["counts"]
    assert c["in"] == len(texts) == c["kept"] + sum(c["removed"].values())
    assert set(c["removed"]) <= {"low_quality"} and c["kept"] > 0 and c["removed"].get("low_quality", 0) > 0
    assert man["stats"]["work_units"] == 6  # 3 parts cut in 2 slices each, to keep 2 actors busy
    kept = read_dataset(store, f"{bucket}/out")
    assert kept.column_names == ["id", "url", "text", "lang", "quality_score", "quality_label"]
    assert kept.column("id").to_pylist() == [i for i in ids if i in set(kept.column("id").to_pylist())]  # input order
    rejects = read_rejects(store, f"{bucket}/out")
    assert set(kept.column("id").to_pylist()) | set(rejects.column("id").to_pylist()) == set(ids)
    assert kept.num_rows + rejects.num_rows == len(ids)

    # every row has its score: the columns on kept rows, the details of removed ones, equal to a plain loop's
    expected = dict(zip(ids, FastTextClassifier.load(None, "hq", True).score(texts)[0]))
    for i, s, lab in zip(kept.column("id").to_pylist(), kept.column("quality_score").to_pylist(),
                         kept.column("quality_label").to_pylist()):
        assert s == pytest.approx(expected[i], abs=1e-6) and s >= 0.5 and lab in ("hq", "cc")
    for row in rejects.to_pylist():
        d = json.loads(row["details"])
        assert row["reason"] == "low_quality" and d["quality_score"] == pytest.approx(expected[row["id"]], abs=1e-5)
        assert d["quality_score"] < d["threshold"] == 0.5 and row["text"] == texts[ids.index(row["id"])]

    # a re-run with the same config and input is a no-op: same manifest, no new files
    files = store.list_files(f"{bucket}/out")
    again = run_stage(cfg, "quality", f"{bucket}/in", f"{bucket}/out")
    assert again["created"] == man["created"] and store.list_files(f"{bucket}/out") == files
    # actor count and batch size are resources, not part of the result: still a no-op
    assert run_stage(cfg_factory("ray.actors=1", "ray.batch_size=50"), "quality", f"{bucket}/in",
                     f"{bucket}/out")["created"] == man["created"]
    # a new threshold re-runs, and moves documents between kept and low_quality
    strict = run_stage(cfg_factory("quality.threshold=0.99"), "quality", f"{bucket}/in", f"{bucket}/out")
    assert strict["counts"]["in"] == len(texts) and strict["counts"]["kept"] < c["kept"]
    assert read_manifest(store, f"{bucket}/out")["counts"] == strict["counts"]
    assert {p["path"] for p in strict["parts"]} == {u.rsplit("/out/", 1)[1] for u in store.list_files(f"{bucket}/out")
                                                    if not u.endswith("_manifest.json")}  # old parts collected


def test_stage_reads_external_jsonl_from_s3(ray_local, s3_server, cfg_factory):
    from pipeline.core.dataset import read_dataset
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    bucket = s3_server.make_bucket("quality-external")
    store = Storage()
    texts = _real_docs()[:10]
    store.write_text(f"{bucket}/ext/docs.jsonl", "".join(json.dumps({"text": t}) + "\n" for t in texts))
    man = run_stage(cfg_factory("ray.actors=2"), "quality", f"{bucket}/ext/", f"{bucket}/q")
    assert man["counts"]["in"] == 10 and man["input"]["external"]
    out = read_dataset(store, f"{bucket}/q")
    assert out.num_rows == man["counts"]["kept"] and out.column("url").null_count == out.num_rows


def test_external_ids_are_path_qualified_and_a_duplicate_fails_the_stage(ray_local, s3_server, cfg_factory):
    """en/docs.jsonl and de/docs.jsonl without ids: distinct ids; an external id given twice fails, naming it."""
    from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
    from pipeline.core.stage import StageFailed
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    bucket = s3_server.make_bucket("quality-ids")
    store = Storage()
    texts = _real_docs()[:6]
    for lang in ("en", "de"):
        store.write_text(f"{bucket}/ext/{lang}/docs.jsonl", "".join(json.dumps({"text": t}) + "\n" for t in texts[:3]))
    man = run_stage(cfg_factory("ray.actors=1"), "quality", f"{bucket}/ext/", f"{bucket}/q")
    ids = (read_dataset(store, f"{bucket}/q", ["id"]).column("id").to_pylist()
           + read_rejects(store, f"{bucket}/q").column("id").to_pylist())
    assert man["counts"]["in"] == 6 and len(set(ids)) == 6
    store.write_text(f"{bucket}/dup/a.jsonl", "".join(json.dumps({"id": i, "text": t}) + "\n"
                                                      for i, t in zip(["same", "other", "same"], texts)))
    with pytest.raises(StageFailed, match=r"1 document ids .*'same'"):
        run_stage(cfg_factory("ray.actors=1"), "quality", f"{bucket}/dup/", f"{bucket}/q2")
    assert read_manifest(store, f"{bucket}/q2") is None


def test_corrupt_model_fails_fast_before_any_data_is_read(s3_server, cfg_factory, capsys):
    """The input's only part is gone: reading it would fail. The model check must fail first, with exit code 3."""
    from pipeline.cli import main
    from pipeline.core.dataset import read_manifest
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    from udfs.quality import QualityModelError
    bucket = s3_server.make_bucket("quality-corrupt")
    store = Storage()
    _commit_dataset(store, f"{bucket}/in", ["some text"], parts=1)
    for uri in store.list_files(f"{bucket}/in"):
        store.delete(uri)  # the manifest stays (hidden name), the part file is gone
    store.write_bytes(f"{bucket}/bad.ftz", b"\x00garbage, not a fastText model" * 100)
    cfg = cfg_factory(f"quality.model_uri={bucket}/bad.ftz")
    t0 = time.time()
    with pytest.raises(QualityModelError, match="bad.ftz: not a fastText model"):
        run_stage(cfg, "quality", f"{bucket}/in", f"{bucket}/out")
    assert time.time() - t0 < 10 and read_manifest(store, f"{bucket}/out") is None
    rc = main(["stage", "quality", "--input", f"{bucket}/in", "--output", f"{bucket}/out",
               "--set", f"quality.model_uri={bucket}/bad.ftz"])
    assert rc == 3 and "not a fastText model" in capsys.readouterr().err


def test_mdr_run_runs_quality_after_a_spark_stage(spark, ray_local, s3_server, cfg_factory):
    """`mdr run` order: a Spark stage commits its dataset, then quality reads that manifest on Ray."""
    from pipeline.core.dataset import read_dataset
    from pipeline.run.runner import run_pipeline
    from pipeline.core.storage import Storage
    bucket = s3_server.make_bucket("quality-run")
    store = Storage()
    texts = _real_docs()
    _commit_dataset(store, f"{bucket}/in", texts + texts[:4], parts=2)  # 4 exact duplicates for dedup_exact
    cfg = cfg_factory("run.stages=[dedup_exact,quality]", "ray.actors=2")
    dedup, quality = run_pipeline(cfg, input_uri=f"{bucket}/in", output_root=f"{bucket}/run")
    assert dedup["stage"] == "dedup_exact" and quality["stage"] == "quality"
    assert quality["counts"]["in"] == dedup["rows"] < len(texts) + 4
    assert quality["input"]["uri"] == f"{bucket}/run/dedup_exact"
    out = read_dataset(store, f"{bucket}/run/quality")
    assert out.num_rows == quality["counts"]["kept"] and "quality_score" in out.column_names
