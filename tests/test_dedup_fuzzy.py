"""dedup_fuzzy stage on Spark local[2]: duplicates collapse, transitivity, giant buckets, short documents,
keeper rules, determinism across runs and partitionings, external datasets, and connected components
checked against a union-find."""
from __future__ import annotations

import json
import math
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shared_path
from pipeline.core.connected_components import Checkpoints, connected_components
from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage
from pipeline.run.runner import run_stage
from udfs.minhash import PRESETS, jaccard, minhasher

STORE = Storage()


def _articles() -> list[str]:
    path = shared_path("groundtruth", "news-articles-181.jsonl")
    return [json.loads(line)["article_body"] for line in path.open()]


def _write_jsonl(path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(cfg, spark, src, out, force: bool = False) -> dict:
    return run_stage(cfg, "dedup_fuzzy", str(src), str(out), spark=spark, force=force)


def _dups(out) -> dict[str, str]:
    rej = read_rejects(STORE, str(out)).to_pylist()
    assert all(r["reason"] == "fuzzy_duplicate" for r in rej)
    return {r["id"]: json.loads(r["details"])["duplicate_of"] for r in rej}


def _kept(out) -> list[str]:
    return read_dataset(STORE, str(out), ["id"]).column("id").to_pylist()


def _chain(words: list[str]) -> tuple[str, str, str]:
    """Windows a, b, c of one text, each shifted by a tenth: a~b and b~c similar, a and c much less."""
    n = 1000
    s = n // 10
    return tuple(" ".join(words[i * s:i * s + n]) for i in range(3))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    arts = _articles()
    long_words = max(arts, key=lambda t: len(t.split())).split()
    a, b, c = _chain(long_words)
    base = [t for t in arts if 300 <= len(t.split()) < 2000]
    rows = [{"id": "x3", "text": base[0]}, {"id": "x1", "text": base[0]}, {"id": "x2", "text": base[0]},
            {"id": "c_a", "text": a}, {"id": "c_b", "text": b}, {"id": "c_c", "text": c},
            {"id": "e1", "text": ""}, {"id": "e2", "text": "   "}, {"id": "e3", "text": "?! ..."},
            {"id": "s2", "text": "Hello world!"}, {"id": "s1", "text": "hello, WORLD"}, {"id": "s3", "text": "hello world"},
            {"id": "s4", "text": "hello there"}, {"id": "s5", "text": "hello world " + base[1]}]
    rows += [{"id": f"u{i:02d}", "text": t} for i, t in enumerate(base[2:14])]
    root = tmp_path_factory.mktemp("fuzzy_scenario")
    _write_jsonl(root / "in" / "docs.jsonl", rows)
    return {"root": root, "rows": rows, "chain": (a, b, c)}


def test_chain_documents_are_what_the_test_needs(scenario):
    a, b, c = scenario["chain"]
    assert jaccard(a, b) >= 0.8 and jaccard(b, c) >= 0.8 and jaccard(a, c) < 0.7
    mh = minhasher(PRESETS["refinedweb"])
    _, keys = mh.doc_band_keys([a, c])
    assert not set(keys[:450].tolist()) & set(keys[450:].tolist()), "a and c must not share a band directly"


def test_duplicates_chains_and_short_documents(spark, cfg_factory, scenario):
    out = scenario["root"] / "out"
    cfg = cfg_factory("dedup_fuzzy.keep=earliest", "run.audit=full")
    man = _run(cfg, spark, scenario["root"] / "in", out)
    dups = _dups(out)
    # exact duplicates collapse to the smallest id; the chain a~b~c is one component (transitivity);
    # identical short documents collapse; empty ones are never duplicates
    assert dups == {"x2": "x1", "x3": "x1", "c_b": "c_a", "c_c": "c_a", "s2": "s1", "s3": "s1"}
    kept = set(_kept(out))
    assert {"e1", "e2", "e3", "s4", "s5", "x1", "c_a", "s1"} <= kept
    assert len(kept) == len(scenario["rows"]) - 6
    c = man["counts"]
    assert c == {"in": 26, "kept": 20, "removed": {"fuzzy_duplicate": 6}}
    st = man["stats"]
    assert st["keep"] == "smallest_id"  # keep=earliest without a warc_date column falls back
    assert st["components"] == 3 and st["docs_in_components"] == 9 and st["largest_component"] == 3
    assert st["component_sizes"] == {"3-4": 3}
    assert st["docs_without_shingles"] == 3 and st["minhash"] == "5ng_450b_20r_9000h_128bit"
    rej = {r["id"]: r for r in read_rejects(STORE, str(out)).to_pylist()}
    assert json.loads(rej["c_c"]["details"]) == {"duplicate_of": "c_a", "component_size": 3}
    assert rej["x2"]["text"] == scenario["rows"][0]["text"]  # audit=full keeps the text
    assert {f["name"] for f in man["schema"]} == {"id", "url", "text"}


def _families(texts: list[str], rng: random.Random) -> list[dict]:
    """Per text a family: the text (id fNNm0) and up to three copies with 1% of words edited, shuffled."""
    rows = []
    for f, text in enumerate(texts):
        words = text.split()
        for m in range(rng.randint(1, 4)):
            w = [x if rng.random() > 0.01 else "edit" for x in words] if m else words
            rows.append({"id": f"f{f:02d}m{m}", "text": " ".join(w)})
    rng.shuffle(rows)
    return rows


def _near_dup_rows(n_fam: int = 12) -> list[dict]:
    return _families([t for t in _articles() if len(t.split()) >= 300][:n_fam], random.Random(5))


def test_two_runs_and_other_partitionings_write_the_same_output(spark, cfg_factory, tmp_path):
    rows = _near_dup_rows()
    _write_jsonl(tmp_path / "one" / "all.jsonl", rows)
    for i in range(4):
        _write_jsonl(tmp_path / "four" / f"p{i}.jsonl", rows[i::4])
    cfg = cfg_factory("dedup_fuzzy.preset=fineweb")

    def parts(out):
        man = read_manifest(STORE, str(out))
        return [pq.read_table(out / p["path"]).to_pylist() for p in man["parts"]]

    _run(cfg, spark, tmp_path / "one", tmp_path / "r1")
    _run(cfg, spark, tmp_path / "one", tmp_path / "r2")
    old = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "5")
    try:
        _run(cfg, spark, tmp_path / "four", tmp_path / "r3")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    # the same input: the same parts, byte for byte in content and order
    assert parts(tmp_path / "r1") == parts(tmp_path / "r2")
    assert read_rejects(STORE, str(tmp_path / "r1")) == read_rejects(STORE, str(tmp_path / "r2"))
    # the same documents split into four files, fewer shuffle partitions: the same decisions;
    # output part k holds input part k's survivors in input order
    p3 = parts(tmp_path / "r3")
    assert len(p3) == 4 and all(r["id"] in {x["id"] for x in rows[k::4]} for k, p in enumerate(p3) for r in p)
    key = lambda r: r["id"]  # noqa: E731
    assert sorted((r for p in parts(tmp_path / "r1") for r in p), key=key) == sorted((r for p in p3 for r in p), key=key)
    dups = _dups(tmp_path / "r1")
    assert dups == _dups(tmp_path / "r3")
    kept = _kept(tmp_path / "r1")
    families = {r["id"][:3] for r in rows}
    assert sorted(r["id"][:3] for r in rows if r["id"] in kept) == sorted(families)  # one survivor per family
    assert all(k[:3] == v[:3] and v.endswith("m0") for k, v in dups.items())
    assert len(kept) + len(dups) == len(rows)


def _synthetic_families(n_fam: int = 10, seed: int = 9) -> list[dict]:
    """``_families`` of random 400-word pages (no shared data)."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20_000)]
    return _families([" ".join(rng.choice(vocab) for _ in range(400)) for _ in range(n_fam)], rng)


def test_128_bit_band_keys_make_the_same_decisions_and_name_themselves(spark, cfg_factory, tmp_path):
    rows = _synthetic_families()
    _write_jsonl(tmp_path / "in" / "all.jsonl", rows)
    out = {}
    for bits in (64, 128):
        cfg = cfg_factory("dedup_fuzzy.preset=fineweb", f"dedup_fuzzy.key_bits={bits}")
        man = _run(cfg, spark, tmp_path / "in", tmp_path / f"k{bits}")
        out[bits] = (_dups(tmp_path / f"k{bits}"), sorted(_kept(tmp_path / f"k{bits}")), man)
    assert out[64][:2] == out[128][:2]
    dups, kept, man = out[128]
    assert sorted(k[:3] for k in kept) == sorted({r["id"][:3] for r in rows})   # one survivor per family
    assert len(dups) == len(rows) - len(kept) > 5 and all(v.endswith("m0") for v in dups.values())
    assert man["params"]["minhash"] == man["stats"]["minhash"] == "5ng_14b_8r_112h_128bit"
    assert out[64][2]["params"]["minhash"] == "5ng_14b_8r_112h"
    assert man["config_hash"] != out[64][2]["config_hash"]


def test_giant_bucket_of_identical_documents_keeps_one(spark, cfg_factory, tmp_path):
    text = " ".join(_articles()[3].split()[:60])
    rows = [{"id": f"g{i:05d}", "text": text} for i in range(10_000)]
    rng = random.Random(1)
    rng.shuffle(rows)
    for i in range(4):
        _write_jsonl(tmp_path / "in" / f"p{i}.jsonl", rows[i::4])
    cfg = cfg_factory("dedup_fuzzy.preset=custom", "dedup_fuzzy.num_hashes=16", "dedup_fuzzy.bands=4",
                      "dedup_fuzzy.rows=4", "run.audit=none")
    # windows over a bucket spill to disk past a few thousand rows instead of holding the bucket in memory
    conf = {"spark.sql.windowExec.buffer.in.memory.threshold": "256", "spark.sql.windowExec.buffer.spill.threshold": "1024"}
    old = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        man = _run(cfg, spark, tmp_path / "in", tmp_path / "out")
    finally:
        for k, v in old.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)
    assert man["counts"] == {"in": 10_000, "kept": 1, "removed": {"fuzzy_duplicate": 9_999}}
    assert _kept(tmp_path / "out") == ["g00000"]
    assert set(_dups(tmp_path / "out").values()) == {"g00000"}
    st = man["stats"]
    # 4 buckets of 10,000 give 9,999 distinct star edges, not 4 x 5e7 pairs
    assert st["candidate_edges"] == 9_999 and st["largest_component"] == 10_000
    assert st["component_sizes"] == {"8193-16384": 1}


def test_keep_rules_on_an_external_parquet_dataset(spark, cfg_factory, tmp_path):
    words = [t for t in _articles() if len(t.split()) >= 400][0].split()[:400]
    rows = [{"id": "k1", "text": " ".join(words + ["tail"] * 3), "warc_date": "2024-06-01T00:00:00Z"},
            {"id": "k2", "text": " ".join(words[:-5]), "warc_date": "2019-01-02T03:04:05Z"},
            {"id": "k3", "text": " ".join(words), "warc_date": None},
            {"id": "k0", "text": "an unrelated short page about nothing in particular at all", "warc_date": None}]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "docs.parquet")
    expected = {"longest": "k1", "earliest": "k2", "smallest_id": "k1"}
    for rule in ("longest", "earliest"):
        out = tmp_path / rule
        man = _run(cfg_factory(f"dedup_fuzzy.keep={rule}"), spark, tmp_path / "in", out)
        assert man["stats"]["keep"] == rule
        kept = set(_kept(out))
        assert kept == {"k0", expected[rule]}
        assert set(_dups(out).values()) == {expected[rule]}
        assert {f["name"] for f in man["schema"]} == {"id", "url", "text", "warc_date"}


def test_external_jsonl_without_ids(spark, cfg_factory, tmp_path):
    texts = [t for t in _articles() if len(t.split()) >= 200][:6]
    _write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": t} for t in texts])
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"text": t + " Share this article."} for t in texts[:3]])
    man = _run(cfg_factory("dedup_fuzzy.preset=fineweb"), spark, tmp_path / "in", tmp_path / "out")
    assert man["counts"] == {"in": 9, "kept": 6, "removed": {"fuzzy_duplicate": 3}}
    kept = set(_kept(tmp_path / "out"))
    dups = _dups(tmp_path / "out")
    assert len(kept) == 6 and set(dups.values()) <= kept and not set(dups) & kept


# --------------------------------------------------------------------------- connected components

def _union_find(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return {x: find(x) for x in list(parent)}


def _random_graphs(seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)

    def ids(n):
        out = list(dict.fromkeys(rng.getrandbits(64) - 2**63 for _ in range(n + 10)))
        return out[:n]

    edges = []
    v = ids(400)  # sparse random graph: many small components and singletons
    edges += [(rng.choice(v), rng.choice(v)) for _ in range(300)]
    v = ids(600)  # one long path in random id order (the slow case for label propagation)
    edges += list(zip(v, v[1:]))
    v = ids(300)  # random trees
    edges += [(v[i], v[rng.randrange(i)]) for i in range(1, 300)]
    v = ids(200)  # dense clusters with duplicate and reversed edges
    for k in range(0, 200, 20):
        cl = v[k:k + 20]
        edges += [(rng.choice(cl), rng.choice(cl)) for _ in range(60)]
    edges += [(b, a) for a, b in edges[:50]] + edges[:50]
    return edges


@pytest.mark.parametrize("seed, where", [(11, "local"), (12, "s3")])
def test_connected_components_match_union_find(spark, s3_server, seed, where):
    """Spark's local checkpoints, or Parquet checkpoints on S3 through the storage layer: one round's kept at a time
    (the last one, which the labels read), and none once closed."""
    edges = _random_graphs(seed)
    df = spark.createDataFrame(edges, "src long, dst long").repartition(7)
    folder = f"{s3_server.make_bucket(f'cc-{seed}')}/ckpt/run1" if where == "s3" else None
    checkpoints = Checkpoints(STORE, folder, 64 << 10)
    persisted = spark.sparkContext._jsc.getPersistentRDDs().size()
    cc = connected_components(df, checkpoints=checkpoints)
    got = {r["node"]: r["root"] for r in cc.labels.collect()}
    if folder:
        left = {f[len(folder) + 1:].split("/")[0] for f in STORE.list_files(folder)}
        assert left == {f"cc-round-{cc.rounds}"} and cc.rounds >= 3
    checkpoints.close()
    if folder:
        assert not STORE.list_files(folder)
    else:
        assert spark.sparkContext._jsc.getPersistentRDDs().size() == persisted  # every round's blocks released
    want = {n: r for n, r in _union_find(edges).items()}
    # union-find lists self-loop-only nodes; components are defined by real edges
    looped_only = {u for u, v in edges if u == v} - {x for u, v in edges if u != v for x in (u, v)}
    for n in looped_only:
        want.pop(n)
    assert got == want
    assert cc.edges == len({(max(u, v), min(u, v)) for u, v in edges if u != v})
    assert cc.rounds <= 2 * math.ceil(math.log2(600)) + 2


def test_connected_components_of_no_edges(spark):
    cc = connected_components(spark.createDataFrame([(1, 1)], "src long, dst long"))
    assert cc.labels.count() == 0 and cc.rounds == 0 and cc.edges == 0


def test_parts_read_in_row_ranges_make_the_same_decisions(spark, cfg_factory, tmp_path):
    """A committed part larger than run.target_part_bytes is read by several tasks (row ranges): the graph's nodes
    are (part, row) positions, so the decisions and the output are those of reading each part whole."""
    from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path
    rows = _near_dup_rows(40)  # ~280 KB a part
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    src, parts = tmp_path / "in", []
    for p in range(2):
        w = PartWriter(STORE, str(src), part_path(p, f"{p:08x}"), schema)
        mine = rows[p::2]
        for s in range(0, len(mine), 3):  # row groups of 3 rows, so a range starts inside the part
            w.write(pa.Table.from_pylist([dict(r, url=None) for r in mine[s:s + 3]], schema=schema))
        parts.append(w.close())
    commit(STORE, str(src), build_manifest(stage="input", config_hash="x", input_desc={}, parts=parts, rejects=[],
                                           schema=schema, counts=Counts(len(rows), len(rows)), failed_inputs=[],
                                           started=0.0))
    whole = _run(cfg_factory("dedup_fuzzy.preset=fineweb"), spark, src, tmp_path / "whole")
    split = _run(cfg_factory("dedup_fuzzy.preset=fineweb", "run.target_part_bytes=65536"), spark, src,
                 tmp_path / "split")
    assert min(p.bytes for p in parts) > 2 * 65536  # each part is read by several tasks (3 or more)
    assert whole["counts"] == split["counts"] and whole["counts"]["removed"]
    assert _dups(tmp_path / "whole") == _dups(tmp_path / "split")
    assert _kept(tmp_path / "whole") == _kept(tmp_path / "split")
