"""Cross-release dedup in the dedup stages (Spark local mode): an index catalog built from a "released" dataset,
then dedup_exact and dedup_fuzzy run on new documents with ``prior_index`` set; the reasons, the kept copy they
point to, a changed MinHash setting refused, and a stage whose input has no document left."""
from __future__ import annotations

import json
import time

import pytest

from pipeline.core.config import ConfigError
from pipeline.core.dataset import Counts, build_manifest, commit, read_dataset, read_manifest, read_rejects
from pipeline.core.prior_index import Catalog
from pipeline.core.storage import Storage
from pipeline.refresh.prior_build import build_catalog
from pipeline.run.runner import run_stage
from pipeline.stages.extract import SCHEMA
from tests.fake_cc import article, nearly

STORE = Storage()


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _text(i: int) -> str:
    return article(i)[1]


@pytest.fixture(scope="module", params=[64, 128], ids=["band64", "band128"])
def prior(request, spark, cfg_factory, tmp_path_factory):
    """A one-release index, with 64- and with 128-bit band keys (dedup_fuzzy.key_bits): every test using it runs
    with both (the stages below get the same key_bits through ``_cfg``)."""
    tmp = tmp_path_factory.mktemp(f"prior{request.param}")
    released = [{"id": f"old{i}", "url": f"https://www.old.example.org/{i}.html", "text": _text(i)} for i in range(4)]
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb", "refresh.index_buckets=3", f"dedup_fuzzy.key_bits={request.param}")
    cat = build_catalog(spark, STORE, cfg, _jsonl(tmp / "released" / "docs.jsonl", released), "r1",
                        str(tmp / "index"), None)
    return {"tmp": tmp, "released": released, "catalog": cat.uri, "key_bits": request.param}


def _cfg(cfg_factory, prior, *overrides):
    return cfg_factory("dedup_fuzzy.preset=fineweb", f"dedup_fuzzy.key_bits={prior['key_bits']}", *overrides)


def _checkpointed(prior, name: str) -> list[str]:
    """With 128-bit keys the stage cuts its lineage as Parquet checkpoints (run.checkpoint_uri) holding the key's
    two columns (band keys: key, key2); with 64-bit keys through Spark's local checkpoints."""
    if prior["key_bits"] == 64:
        return []
    return [f"run.checkpoint_uri={prior['tmp'] / name}", "dedup_exact.hash_bits=128"]


def test_catalog_lists_every_key_of_the_release(prior):
    cat = Catalog.load(STORE, prior["catalog"])
    assert cat.releases == ["r1"] and cat.buckets == 3
    assert cat.data["rows"] == {"url": 4, "doc": 4, "band": 4 * 14}
    assert cat.data["params"]["minhash"]["name"] == {64: "5ng_14b_8r_112h", 128: "5ng_14b_8r_112h_128bit"}[
        prior["key_bits"]]
    band = _index(cat, "band")
    assert len(band) == 4 * 14 and {type(r["key"]) for r in band} == {int if prior["key_bits"] == 64 else bytes}
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
    cfg = _cfg(cfg_factory, prior, f"dedup_exact.prior_index={prior['catalog']}", *_checkpointed(prior, "ckpt-exact"))
    man = run_stage(cfg, "dedup_exact", src, out, spark=spark)
    assert not STORE.list_files(str(prior["tmp"] / "ckpt-exact"), hidden=True)  # deleted when the stage ended
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
    cfg = _cfg(cfg_factory, prior, f"dedup_fuzzy.prior_index={prior['catalog']}", *_checkpointed(prior, "ckpt-fuzzy"))
    man = run_stage(cfg, "dedup_fuzzy", src, out, spark=spark)
    assert not STORE.list_files(str(prior["tmp"] / "ckpt-fuzzy"), hidden=True)
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
    cfg = _cfg(cfg_factory, prior, "dedup_fuzzy.preset=refinedweb", f"dedup_fuzzy.prior_index={prior['catalog']}")
    with pytest.raises(ConfigError, match=r"built with minhash .*5ng_14b_8r_112h.*gives .*5ng_450b_20r_9000h"):
        run_stage(cfg, "dedup_fuzzy", src, str(prior["tmp"] / "out-params"), spark=spark)
    other = {64: 128, 128: 64}[prior["key_bits"]]   # keys of another width cannot be compared either
    cfg = _cfg(cfg_factory, prior, f"dedup_fuzzy.key_bits={other}", f"dedup_fuzzy.prior_index={prior['catalog']}")
    with pytest.raises(ConfigError, match=r"key_bits: the cross-release index .* built with minhash"):
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

    from pipeline.core.prior_index import bucket_expr
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
    # 128-bit band keys: (key, key2) longs -> 16 bytes big-endian, bucketed by their first 4 bytes like key's
    from pipeline.core.prior_index import band_key_expr
    from udfs.prior_keys import band_index_keys
    pairs = np.array([[b, bands[-1 - i]] for i, b in enumerate(bands)], dtype=np.int64)
    df = spark.createDataFrame([tuple(map(int, p)) for p in pairs], "key long, key2 long")
    rows = df.select(band_key_expr("key", "key2").alias("k")).select("k", bucket_expr(F.col("k"), "band", 7, 128)
                                                                     .alias("b")).collect()
    want = band_index_keys(pairs).to_pylist()
    assert [bytes(r["k"]) for r in rows] == want and all(len(w) == 16 for w in want)
    assert [r["b"] for r in rows] == [bytes_bucket(w, 7) for w in want] == [long_bucket(int(b), 7) for b in bands]


def _index(catalog: Catalog, kind: str) -> list[dict]:
    import io

    import pyarrow.parquet as pq
    rows = []
    for uri in catalog.files(kind):
        with STORE.open_read(uri) as f:
            rows += pq.read_table(io.BytesIO(f.read())).to_pylist()
    return rows


def _shares_a_span(seed: int) -> str:
    """Two paragraphs of an article, then all of article 80 (~200 words): two such pages share a span of far more
    than k=50 tokens, so dedup_exact cuts it from one of them, which loses most of its text (5-gram Jaccard of
    the cut and the uncut text about 0.4, as is that of the two pages: no MinHash band in common)."""
    return "\n\n".join(_text(seed).split("\n\n")[:2] + [_text(80)])


def test_index_keys_come_from_the_text_each_dedup_stage_looked_up(spark, cfg_factory, tmp_path):
    """A released document whose text dedup_exact cut: its text-hash key is the hash of its uncut text (what
    dedup_exact hashes on a later night), its band keys those of dedup_fuzzy's input; documents the release does
    not hold (removed by dedup_fuzzy, by dedup_exact) have no key."""
    from udfs.dochash import text_hash
    from udfs.minhash import minhasher
    from udfs.prior_keys import band_index_keys
    docs = [{"id": "p", "url": "https://a.example.org/p", "text": _shares_a_span(81)},
            {"id": "q", "url": "https://a.example.org/q", "text": _shares_a_span(83)},
            {"id": "c", "url": "https://a.example.org/c", "text": _text(84)},
            {"id": "d", "url": "https://a.example.org/c", "text": _text(85)},           # c's URL: duplicate_url
            {"id": "f", "url": "https://a.example.org/f", "text": nearly(_text(84), seed=4)}]  # fuzzy_duplicate
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb", "refresh.index_buckets=3")
    src = _jsonl(tmp_path / "in" / "docs.jsonl", docs)
    fuzzy = run_stage(cfg, "dedup_fuzzy", src, str(tmp_path / "dedup_fuzzy"), spark=spark)
    exact = run_stage(cfg, "dedup_exact", str(tmp_path / "dedup_fuzzy"), str(tmp_path / "dedup_exact"), spark=spark)
    assert fuzzy["counts"]["removed"] == {"fuzzy_duplicate": 1} and exact["counts"]["removed"] == {"duplicate_url": 1}
    out = {r["id"]: r for r in read_dataset(STORE, str(tmp_path / "dedup_exact"),
                                            ["id", "text", "exact_removed_chars"]).to_pylist()}
    assert sorted(out) == ["c", "p", "q"]
    cut = [i for i in ("p", "q") if out[i]["exact_removed_chars"]]
    assert len(cut) == 1 and out[cut[0]]["exact_removed_chars"] > 1000
    cat = build_catalog(spark, STORE, cfg, str(tmp_path / "dedup_exact"), "r1", str(tmp_path / "index"), None)

    uncut = {d["id"]: d["text"] for d in docs}
    doc_keys = {r["id"]: r["key"] for r in _index(cat, "doc")}
    assert doc_keys == {i: text_hash(uncut[i]) for i in ("c", "p", "q")}
    assert doc_keys[cut[0]] != text_hash(out[cut[0]]["text"])
    bands: dict[str, set] = {}
    for r in _index(cat, "band"):
        bands.setdefault(r["id"], set()).add(r["key"])
    mh = minhasher(cfg.dedup_fuzzy.params())
    assert bands == {i: set(band_index_keys(mh.doc_band_keys([uncut[i]])[1]).to_pylist()) for i in ("c", "p", "q")}
    assert sorted(r["id"] for r in _index(cat, "url")) == ["c", "p", "q"]
    assert cat.data["added"] == {"url": 3, "doc": 3, "band": 3 * 14}


@pytest.mark.parametrize("item, stages, reason", [
    ("CC-MAIN-2099-20", "dedup_fuzzy, dedup_exact", "fuzzy_duplicate_prior"),  # fuzzy first: every band is shared
    ("CC-MAIN-2099-21", "dedup_exact, dedup_fuzzy", "duplicate_text_prior"),   # exact first: the same text hash
])
def test_refresh_catches_a_copy_of_a_released_page_whose_text_was_cut(spark, fake_cc, tmp_path, item, stages,
                                                                       reason):
    """Night 1 releases two pages sharing a ~160-word span; dedup_exact cuts it from one. Night 2 brings a
    verbatim copy of that page at a new URL: the first dedup stage to run finds it in the index, since the index
    holds the keys of the text that stage looked up (before the cut), not of the released (cut) text."""
    from pipeline.core.config import load_config
    from pipeline.refresh.nightly import refresh
    from tests.fake_cc import warc_bytes
    fake_cc.set_collinfo([item])  # "latest": this test's own crawl
    site = f"https://www.{item.lower()}.example.org"
    cfg = load_config(None, [f"storage.http_base_urls=[{fake_cc.base}]", f"refresh.source={fake_cc.base}",
                             "refresh.follow=[latest]", f"refresh.state={tmp_path / 'state'}", "refresh.budget=10",
                             "refresh.index_buckets=2", f"run.stages=[extract, filter, {stages}]",
                             "dedup_fuzzy.preset=fineweb", "spark.shuffle_partitions=4"])
    pages = {"p": (f"{site}/p.html", "Page P", _shares_a_span(81)),
             "q": (f"{site}/q.html", "Page Q", _shares_a_span(83))}
    fake_cc.publish(item, "1.warc.gz", warc_bytes(tmp_path, "1.warc.gz", list(pages.values())))
    night1 = refresh(cfg, spark=spark)
    assert night1.status == "released" and night1.documents == 2 and night1.removed_prior == {}
    rel1 = f"{tmp_path / 'state'}/releases/{night1.run_id}"
    final1 = read_manifest(STORE, f"{rel1}/{stages.split(', ')[-1]}")["stage"]
    first = {r["url"]: r for r in read_dataset(STORE, f"{rel1}/{final1}",
                                                ["id", "url", "text", "exact_removed_chars"]).to_pylist()}
    cut = [k for k, (u, _, _) in pages.items() if first[u]["exact_removed_chars"] > 1000]
    assert len(cut) == 1 and len(first) == 2  # one of the two lost the shared span, and both were released

    _, title, text = pages[cut[0]]
    copy = (f"{site}/mirror/{cut[0]}.html", title, text)
    fresh = (f"{site}/new.html", "Page N", _text(86))
    fake_cc.publish(item, "2.warc.gz", warc_bytes(tmp_path, "2.warc.gz", [copy, fresh]))
    night2 = refresh(cfg, spark=spark)
    assert night2.status == "released" and night2.removed_prior == {reason: 1}
    rel2 = f"{tmp_path / 'state'}/releases/{night2.run_id}"
    assert [d["url"] for d in read_dataset(STORE, f"{rel2}/{final1}", ["url"]).to_pylist()] == [fresh[0]]
    stage = "dedup_fuzzy" if reason.startswith("fuzzy") else "dedup_exact"
    rej = {r["url"]: (r["reason"], json.loads(r["details"]))
           for r in read_rejects(STORE, f"{rel2}/{stage}").to_pylist()}
    assert rej[copy[0]][0] == reason
    assert rej[copy[0]][1]["duplicate_of"] == first[pages[cut[0]][0]]["id"]
    assert rej[copy[0]][1]["prior_release"] == night1.run_id
