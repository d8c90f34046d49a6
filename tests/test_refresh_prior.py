"""Cross-release dedup in the dedup stages (Spark local mode): an index catalog built from a "released" dataset,
then dedup_exact and dedup_fuzzy run on new documents with ``prior_index`` set; the reasons, the kept copy they
point to, a changed MinHash setting refused, and a stage whose input has no document left."""
from __future__ import annotations

import json
import time

import pytest

from pipeline.config import ConfigError
from pipeline.dataset import Counts, build_manifest, commit, read_dataset, read_manifest, read_rejects
from pipeline.prior_build import build_catalog
from pipeline.prior_index import Catalog
from pipeline.runner import run_stage
from pipeline.stages.extract import SCHEMA
from pipeline.storage import Storage
from tests.fake_cc import article, nearly

STORE = Storage()


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _text(i: int) -> str:
    return article(i)[1]


@pytest.fixture(scope="module")
def prior(spark, cfg_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prior")
    released = [{"id": f"old{i}", "url": f"https://www.old.example.org/{i}.html", "text": _text(i)} for i in range(4)]
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb", "refresh.index_buckets=3")
    cat = build_catalog(spark, STORE, cfg, _jsonl(tmp / "released" / "docs.jsonl", released), "r1",
                        str(tmp / "index"), None)
    return {"tmp": tmp, "released": released, "catalog": cat.uri}


def test_catalog_lists_every_key_of_the_release(prior):
    cat = Catalog.load(STORE, prior["catalog"])
    assert cat.releases == ["r1"] and cat.buckets == 3
    assert cat.data["rows"] == {"url": 4, "doc": 4, "band": 4 * 14}
    assert cat.data["params"]["minhash"]["name"] == "5ng_14b_8r_112h"
    assert all(STORE.exists(u) for u in cat.files("band"))
    assert len(cat.files("url", buckets=[0])) <= 1


def test_dedup_exact_removes_urls_and_texts_of_earlier_releases(spark, cfg_factory, prior):
    old = prior["released"]
    new = [{"id": "n1", "url": "http://www.old.example.org/0.html?utm_source=x", "text": _text(50)},  # released URL
           {"id": "n2", "url": "https://www.new.example.org/a.html", "text": "  " + _text(1).replace(" ", "  ")},
           {"id": "n3", "url": "https://www.new.example.org/b.html", "text": _text(51)},
           {"id": "n4", "url": "https://www.new.example.org/c.html", "text": _text(51)}]
    src = _jsonl(prior["tmp"] / "new-exact" / "docs.jsonl", new)
    out = str(prior["tmp"] / "out-exact")
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb", f"dedup_exact.prior_index={prior['catalog']}")
    man = run_stage(cfg, "dedup_exact", src, out, spark=spark)
    assert man["counts"] == {"in": 4, "kept": 1, "removed": {"duplicate_text": 1, "duplicate_text_prior": 1,
                                                             "duplicate_url_prior": 1}}
    assert man["params"]["prior_index"] == prior["catalog"] and "substring" in man["params"]["steps"]
    rej = {r["id"]: (r["reason"], json.loads(r["details"])) for r in read_rejects(STORE, out).to_pylist()}
    assert rej["n1"][0] == "duplicate_url_prior" and rej["n1"][1]["duplicate_of"] == old[0]["id"]
    assert rej["n1"][1]["prior_release"] == "r1"
    assert rej["n2"][0] == "duplicate_text_prior" and rej["n2"][1]["duplicate_of"] == old[1]["id"]
    assert rej["n4"] == ("duplicate_text", {"duplicate_of": "n3"})
    assert read_dataset(STORE, out, ["id"]).column("id").to_pylist() == ["n3"]


def test_dedup_fuzzy_removes_near_duplicates_of_earlier_releases_with_their_cluster(spark, cfg_factory, prior):
    old = prior["released"]
    f1 = nearly(_text(2), seed=1)
    new = [{"id": "f1", "url": "https://n.example.org/1", "text": f1},                  # near copy of old2
           {"id": "f2", "url": "https://n.example.org/2", "text": nearly(f1, seed=2, changes=3)},  # near copy of f1
           {"id": "f3", "url": "https://n.example.org/3", "text": _text(60)},
           {"id": "f4", "url": "https://n.example.org/4", "text": _text(61)},
           {"id": "f5", "url": "https://n.example.org/5", "text": nearly(_text(61), seed=3)}]
    src = _jsonl(prior["tmp"] / "new-fuzzy" / "docs.jsonl", new)
    out = str(prior["tmp"] / "out-fuzzy")
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb", f"dedup_fuzzy.prior_index={prior['catalog']}")
    man = run_stage(cfg, "dedup_fuzzy", src, out, spark=spark)
    assert man["counts"] == {"in": 5, "kept": 2, "removed": {"fuzzy_duplicate": 1, "fuzzy_duplicate_prior": 2}}
    rej = {r["id"]: (r["reason"], json.loads(r["details"])) for r in read_rejects(STORE, out).to_pylist()}
    for doc in ("f1", "f2"):
        reason, details = rej[doc]
        assert reason == "fuzzy_duplicate_prior" and details["duplicate_of"] == old[2]["id"]
        assert details["prior_release"] == "r1"
    assert rej["f5"][0] == "fuzzy_duplicate" and rej["f5"][1]["duplicate_of"] == "f4"
    assert sorted(read_dataset(STORE, out, ["id"]).column("id").to_pylist()) == ["f3", "f4"]
    assert man["stats"]["prior_matched_docs"] >= 1


def test_changed_minhash_settings_fail_naming_both(spark, cfg_factory, prior):
    src = _jsonl(prior["tmp"] / "new-params" / "docs.jsonl", [{"id": "x", "text": _text(70)}])
    cfg = cfg_factory("dedup_fuzzy.preset=refinedweb", f"dedup_fuzzy.prior_index={prior['catalog']}")
    with pytest.raises(ConfigError, match=r"built with minhash .*5ng_14b_8r_112h.*gives .*5ng_450b_20r_9000h"):
        run_stage(cfg, "dedup_fuzzy", src, str(prior["tmp"] / "out-params"), spark=spark)


def test_stage_after_one_that_removed_everything_commits_an_empty_output(cfg_factory, tmp_path):
    root = str(tmp_path / "filter")
    commit(STORE, root, build_manifest(stage="filter", config_hash="x", input_desc={}, parts=[], rejects=[],
                                       schema=SCHEMA, counts=Counts(), failed_inputs=[], started=time.time()))
    for stage in ("dedup_fuzzy", "dedup_exact"):
        out = str(tmp_path / stage)
        man = run_stage(cfg_factory("dedup_fuzzy.preset=fineweb"), stage, root, out)
        assert man["rows"] == 0 and man["counts"] == {"in": 0, "kept": 0, "removed": {}}
        assert read_manifest(STORE, out)["stats"] == {"empty_input": True}
        root = out


def test_spark_and_python_compute_the_same_keys_and_buckets(spark):
    """The index is written with udfs.prior_keys and looked up with Spark expressions: they must agree."""
    import numpy as np
    from pyspark.sql import functions as F

    from pipeline.prior_index import bucket_expr
    from udfs.prior_keys import bytes_bucket, long_bucket, long_buckets, url_index_key
    urls = ["https://example.org/", "http://x.example/a?b=1", "https://例え.jp/パス"]
    bands = [-1, 0, 2**63 - 1, -(2**63), 123456789012345678]
    df = spark.createDataFrame([(u, b) for u, b in zip(urls + urls[:2], bands)], "u string, b long")
    key = F.unhex(F.substring(F.sha2(F.col("u"), 256), 1, 32))
    rows = df.select(key.alias("k"), bucket_expr(key, "url", 7).alias("ub"), bucket_expr(F.col("b"), "band", 7)
                     .alias("bb"), "u", "b").collect()
    for r in rows:
        assert bytes(r["k"]) == url_index_key(r["u"]) and r["ub"] == bytes_bucket(url_index_key(r["u"]), 7)
        assert r["bb"] == long_bucket(r["b"], 7)
    assert list(long_buckets(np.array(bands, dtype=np.int64), 7)) == [long_bucket(b, 7) for b in bands]
