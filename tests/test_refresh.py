"""`mdr refresh`, night after night, against a fake Common Crawl served over HTTP on 127.0.0.1 (collinfo.json,
warc.paths.gz listings, WARCs generated here, faults per file), with the state root on the moto S3 server and
Spark in local mode. The tests run in order and share one state root, as nights do:

1. night 1 takes the first batch; a 404, a 503 that never ends and a truncated download are retried with backoff,
   then recorded as failed in the ledger, and the night still publishes its release;
2. night 2 takes only the new files (and retries the failed ones): a WARC published again under a new name, a copy
   of a released text under a new URL, a near duplicate and a released URL with new text add nothing. That night
   is killed before its commit (``MDR_REFRESH_HOLD_AT=commit``, then SIGKILL by the test); meanwhile a second
   refresh exits with "locked by run X since T"; once the dead run's lock expires the next refresh takes it over,
   resumes the night and commits it exactly once, and no index entry of the killed attempt survives;
3. a night with nothing new is a fast no-op; changed MinHash settings are refused before anything runs;
4. a night through ``--target k8s`` (a stand-in for the operators runs each submitted stage here);
5. a night frozen (SIGSTOP) while its lock is taken over and its run committed by the next one: woken up, it
   exits 4 at once and changes nothing of the new release; a lost lock cancels a running Spark job.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import pytest

from pipeline.core.config import ConfigError, load_config
from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.prior_index import KINDS, Catalog
from pipeline.core.storage import Storage
from pipeline.refresh.ledger import DONE, GAVE_UP, IN_PROGRESS, Ledger
from pipeline.refresh.nightly import HOLD_ENV, HOLD_UNTIL_ENV, refresh
from pipeline.refresh.releases import ReleaseIndex
from tests.conftest import ROOT
from tests.fake_cc import FakeCC, article, nearly, warc_bytes

MAIN, NEWS = "CC-MAIN-2099-05", "CC-NEWS/2099/01"
STATE = "s3://refresh/state"


def url(site: str, i: int) -> str:
    return f"https://www.{site}.example.org/stories/{i}.html"


def pages(site: str, lo: int, hi: int) -> list[tuple[str, str, str]]:
    return [(url(site, i), *article(i)) for i in range(lo, hi)]


@dataclass
class World:
    cc: FakeCC
    tmp: object
    args: list[str]
    paths: dict[str, str] = field(default_factory=dict)   # file name -> listed path
    docs: dict[str, list] = field(default_factory=dict)    # file name -> its (url, title, text)
    seen: dict = field(default_factory=dict)               # what a test leaves for the next ones

    def publish(self, item: str, name: str, docs: list | None, fault: str | None = None, data: bytes | None = None,
                filler: int = 0):
        self.docs[name] = docs or []
        data = data if data is not None else (warc_bytes(self.tmp, name, docs, filler_bytes=filler) if docs else None)
        self.paths[name] = self.cc.publish(item, name, data, fault)

    def cfg(self, *extra: str):
        return load_config(None, [a.split("=", 1)[1] for a in self.args if a.startswith("--set=")] + list(extra))


@pytest.fixture(scope="module")
def world(s3_server, spark, tmp_path_factory):
    cc = FakeCC().start()
    cc.set_collinfo([MAIN, "CC-MAIN-2098-50"])
    s3_server.make_bucket("refresh")
    sets = [f"storage.http_base_urls=[{cc.base}]", "storage.retries=3", f"refresh.source={cc.base}",
            f"refresh.follow=[latest, {NEWS}]", f"refresh.state={STATE}", "refresh.budget=10",
            "refresh.max_attempts=2", "refresh.lease_ttl_s=6", "refresh.heartbeat_s=1", "refresh.index_buckets=4",
            "refresh.index_compact_files=1", "run.stages=[extract, filter, dedup_fuzzy, dedup_exact]",
            "dedup_fuzzy.preset=fineweb", "dedup_exact.substring_dedup=false",  # no cross-release part; its
            "spark.master=local[2]", "spark.driver_memory=1g",                  # shuffles: test_refresh_prior
            "spark.shuffle_partitions=4"]
    w = World(cc, tmp_path_factory.mktemp("cc"), [f"--set={s}" for s in sets])
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "4")  # tiny data: fewer shuffle tasks
    yield w
    spark.conf.set("spark.sql.shuffle.partitions", saved)
    cc.stop()


def mdr(w: World, *args: str, env: dict | None = None, **kw):
    cmd = [sys.executable, "-m", "pipeline.cli", "refresh", *w.args, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def released(store: Storage, release_id: str) -> list[dict]:
    idx = ReleaseIndex.load(store, f"{STATE}/releases")
    entry = next(r for r in idx.releases if r["id"] == release_id)
    return read_dataset(store, f"{STATE}/releases/{entry['dataset']}", ["id", "url", "text"]).to_pylist()


def index_rows(store: Storage, catalog: Catalog, kind: str) -> list[dict]:
    import io
    rows = []
    for uri in catalog.files(kind):
        with store.open_read(uri) as f:
            rows += pq.read_table(io.BytesIO(f.read())).to_pylist()
    return rows


def test_night1_takes_the_first_batch_and_records_source_errors(world, spark):
    w = world
    w.publish(MAIN, "m1.warc.gz", pages("main", 0, 4))
    w.publish(MAIN, "m-gone.warc.gz", None, "missing")
    w.publish(NEWS, "n1.warc.gz", pages("news", 100, 104))
    w.publish(NEWS, "n-flaky.warc.gz", pages("news", 200, 203), "flaky")
    w.publish(NEWS, "n-down.warc.gz", pages("news", 400, 402), "5xx")
    w.publish(NEWS, "n-cut.warc.gz", pages("news", 300, 306), "truncate", filler=3_000_000)  # cut inside the filler
    cfg = w.cfg()
    store = Storage(cfg.storage)
    t0 = time.time()
    night = refresh(cfg, spark=spark)
    w.seen["night1_seconds"] = time.time() - t0
    assert night.status == "released" and sorted(night.files) == sorted(w.paths.values())
    assert set(night.failed) == {w.paths[n] for n in ("m-gone.warc.gz", "n-down.warc.gz", "n-cut.warc.gz")}
    assert "HTTP 404" in night.failed[w.paths["m-gone.warc.gz"]]
    assert "failed after 3 attempts" in night.failed[w.paths["n-down.warc.gz"]]
    assert "kept breaking off" in night.failed[w.paths["n-cut.warc.gz"]]
    assert w.cc.hits[w.paths["n-down.warc.gz"]] >= 3 and w.cc.hits[w.paths["n-flaky.warc.gz"]] >= 2

    ledger = Ledger.load(store, f"{STATE}/ledger.parquet")
    status = {p: (e.status, e.attempts) for p, e in ledger.entries.items()}
    assert status == {w.paths["m1.warc.gz"]: (DONE, 0), w.paths["n1.warc.gz"]: (DONE, 0),
                      w.paths["n-flaky.warc.gz"]: (DONE, 0), w.paths["m-gone.warc.gz"]: ("failed", 1),
                      w.paths["n-down.warc.gz"]: ("failed", 1), w.paths["n-cut.warc.gz"]: ("failed", 1)}
    idx = ReleaseIndex.load(store, f"{STATE}/releases")
    assert [r["id"] for r in idx.releases] == [night.run_id] and idx.data["latest"] == night.run_id
    docs = released(store, night.run_id)
    expect = {u for n in ("m1.warc.gz", "n1.warc.gz", "n-flaky.warc.gz") for u, _, _ in w.docs[n]}
    assert {d["url"] for d in docs} == expect and len(docs) == 11
    # the truncated file's first records were read, then dropped: a failed file gives nothing, it is retried whole
    ext = read_manifest(store, f"{STATE}/releases/{night.run_id}/extract")
    assert ext["counts"]["removed"].get("input_file_failed", 0) >= 1
    entry = idx.entry(night.run_id)
    assert entry["generation"] == json.loads(store.read_text(f"{STATE}/_lock.json"))["generation"] == 1
    assert entry["manifest"] == f"{night.run_id}/_release-g1.json" and idx.generation == 1
    man = json.loads(store.read_text(f"{STATE}/releases/{entry['manifest']}"))
    assert {f["path"]: f["error"] is None for f in man["files"]} == {p: s == DONE for p, (s, _) in status.items()}
    catalog = Catalog.load(store, f"{STATE}/{idx.catalog()}")
    assert catalog.data["rows"]["url"] == 11 and catalog.data["rows"]["doc"] == 11
    assert catalog.data["rows"]["band"] == 11 * 14  # fineweb: 14 bands a document
    w.seen["night1"] = night.run_id


def test_night2_is_killed_before_commit_then_resumed_once(world, spark):
    w = world
    store = Storage(w.cfg().storage)
    m1, n1 = w.docs["m1.warc.gz"], w.docs["n1.warc.gz"]
    w.publish(NEWS, "n2.warc.gz", pages("news", 500, 503))
    w.publish(NEWS, "n1-again.warc.gz", None, data=w.cc.files[w.paths["n1.warc.gz"]])  # republished, new name
    w.docs["n1-again.warc.gz"] = n1
    dups = [(url("mirror", 1), m1[0][1], m1[0][2]),                       # a released text under a new URL
            (url("mirror", 2), n1[1][1], nearly(n1[1][2], seed=7)),       # a near duplicate of a released text
            (m1[2][0], *article(900)),                                    # a released URL with new text
            (url("news", 600), *article(600))]                            # new
    w.publish(MAIN, "m2.warc.gz", dups)

    proc = mdr(w, env={HOLD_ENV: "commit"})
    out = []
    deadline = time.time() + 420
    while time.time() < deadline:
        line = proc.stdout.readline()
        out.append(line)
        if "holding here until killed" in line or (not line and proc.poll() is not None):
            break
    assert any("holding here until killed" in ln for ln in out), "".join(out[-40:])
    lock = json.loads(store.read_text(f"{STATE}/_lock.json"))
    run_id = lock["run_id"]
    assert run_id != w.seen["night1"]

    # a second refresh started now: refused, naming the run and since when; nothing done
    other = mdr(w)
    text, _ = other.communicate(timeout=120)
    assert other.returncode == 4, text
    assert f"locked by run {run_id} since {lock['acquired']}" in text

    ledger = Ledger.load(store, f"{STATE}/ledger.parquet")
    taken = {p for p, e in ledger.entries.items() if e.status == IN_PROGRESS}
    new = {w.paths[n] for n in ("n2.warc.gz", "n1-again.warc.gz", "m2.warc.gz")}
    retried = {w.paths[n] for n in ("m-gone.warc.gz", "n-down.warc.gz", "n-cut.warc.gz")}
    assert taken == new | retried and {ledger.entries[p].run_id for p in taken} == {run_id}
    assert [r["id"] for r in ReleaseIndex.load(store, f"{STATE}/releases").releases] == [w.seen["night1"]]
    orphans = store.list_files(f"{STATE}/index/{run_id}")
    assert orphans and all(u.startswith(f"{STATE}/index/{run_id}/g{lock['generation']}/") for u in orphans)
    assert store.exists(f"{STATE}/index/_catalogs/{run_id}-g{lock['generation']}.json")  # written, never made live
    extract_before = read_manifest(store, f"{STATE}/releases/{run_id}/extract")

    os.killpg(proc.pid, signal.SIGKILL)  # the night dies just before its commit
    proc.wait(timeout=60)

    # the dead run's lock was held by a process of this machine that has exited: it is taken over at once
    # (a holder on another machine holds it until it expires: tests/test_refresh_units.py)
    night = refresh(w.cfg(), spark=spark)
    assert night.status == "released" and night.run_id == run_id
    assert sorted(night.files) == sorted(new | retried)
    # committed stages of the killed attempt were reused, not run again
    assert read_manifest(store, f"{STATE}/releases/{run_id}/extract")["timings"] == extract_before["timings"]

    # only the new documents were released; every kind of duplicate of night 1 was caught
    docs = released(store, run_id)
    assert {d["url"] for d in docs} == {u for u, _, _ in w.docs["n2.warc.gz"]} | {url("news", 600)}
    first = released(store, w.seen["night1"])
    assert not {d["url"] for d in docs} & {d["url"] for d in first}
    assert not {d["text"] for d in docs} & {d["text"] for d in first}
    root = f"{STATE}/releases/{run_id}"
    fuzzy = {r["url"]: json.loads(r["details"]) for r in read_rejects(store, f"{root}/dedup_fuzzy").to_pylist()}
    assert {u for u, _, _ in n1} | {url("mirror", 1), url("mirror", 2)} <= set(fuzzy)
    assert all(d.get("prior_release") == w.seen["night1"] for d in fuzzy.values())
    assert fuzzy[url("mirror", 1)]["duplicate_of"] in {d["id"] for d in first}
    exact = {r["url"]: r for r in read_rejects(store, f"{root}/dedup_exact").to_pylist()}
    assert exact[m1[2][0]]["reason"] == "duplicate_url_prior"
    assert json.loads(exact[m1[2][0]]["details"])["prior_release"] == w.seen["night1"]
    assert night.removed_prior == {"duplicate_url_prior": 1, "fuzzy_duplicate_prior": 6}

    # failed twice: given up and reported, never retried
    ledger = Ledger.load(store, f"{STATE}/ledger.parquet")
    assert set(night.gave_up) == retried
    assert {p for p, e in ledger.entries.items() if e.status == GAVE_UP} == retried
    assert {p for p, e in ledger.entries.items() if e.status == DONE and e.release == run_id} == new
    assert not [e for e in ledger.entries.values() if e.status == IN_PROGRESS]

    # each file went into one release, once; the indexes hold the two releases' documents and nothing else
    idx = ReleaseIndex.load(store, f"{STATE}/releases")
    assert [r["id"] for r in idx.releases] == [w.seen["night1"], run_id]
    gen = lock["generation"] + 1  # the night that took over the killed one's lock
    assert idx.generation == idx.entry(run_id)["generation"] == gen
    assert idx.catalog() == f"index/_catalogs/{run_id}-g{gen}.json"
    inputs = [f for r in idx.releases for f in
              json.loads(store.read_text(f"{STATE}/releases/{r['manifest']}"))["files"] if f["error"] is None]
    assert len(inputs) == len({f["path"] for f in inputs}) == 6
    catalog = Catalog.load(store, f"{STATE}/{idx.catalog()}")
    assert catalog.releases == [w.seen["night1"], run_id]
    all_ids = {d["id"] for d in first} | {d["id"] for d in docs}
    for kind in KINDS:
        rows = index_rows(store, catalog, kind)
        assert {r["id"] for r in rows} == all_ids
        assert {r["release"] for r in rows} == {w.seen["night1"], run_id}
        if kind != "band":
            assert len(rows) == len(all_ids) == 15
    assert all(len(fs) == 1 for k in KINDS for fs in catalog.entries(k).values())  # merged: one file a bucket
    live = {f"{STATE}/index/{p}" for p in catalog.paths()}
    assert all(store.exists(u) for u in live)
    assert not [u for u in orphans if store.exists(u)]              # the killed attempt's index files are gone
    assert not [u for u in store.list_files(f"{STATE}/index") if u not in live]


def test_night_with_nothing_new_is_a_fast_noop(world):
    w = world
    store = Storage(w.cfg().storage)
    before = store.read_versioned(f"{STATE}/releases/_index.json")
    t0 = time.time()
    proc = mdr(w)
    text, _ = proc.communicate(timeout=120)
    seconds = time.time() - t0
    assert proc.returncode == 0, text
    assert "nothing new to process" in text and "[extract]" not in text
    assert seconds < 30, f"no-op night took {seconds:.1f}s"
    assert store.read_versioned(f"{STATE}/releases/_index.json").etag == before.etag
    assert json.loads(store.read_text(f"{STATE}/_lock.json"))["released"]  # released on the way out
    status = subprocess.run([sys.executable, "-m", "pipeline.cli", "refresh", *w.args, "--status"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "gave up:" in status.stdout and "m-gone.warc.gz after 2 attempts" in status.stdout


def test_changed_minhash_settings_are_refused_before_anything_runs(world):
    store = Storage(world.cfg().storage)
    before = store.read_versioned(f"{STATE}/_lock.json")
    with pytest.raises(ConfigError, match=r"was built with minhash .*5ng_14b_8r_112h.*start a new refresh state root"):
        refresh(world.cfg("dedup_fuzzy.preset=refinedweb"))
    assert store.read_versioned(f"{STATE}/_lock.json").etag == before.etag  # never taken


def test_night_through_the_k8s_target(world, spark, tmp_path):
    from pipeline.cluster.submit_k8s import K8S_MASTER  # noqa: F401  (the k8s target's imports work)
    from tests.test_submit import FakeOperator
    w = world
    w.publish(NEWS, "n3.warc.gz", pages("news", 700, 702))
    op = FakeOperator(spark, tmp_path)
    night = refresh(w.cfg("cluster.poll_s=0.05"), target="k8s", k8s_api=op, spark=spark)
    assert night.status == "released" and night.files == [w.paths["n3.warc.gz"]]
    kinds = [(o["kind"], o["metadata"]["name"]) for o in op.created]
    assert kinds[0][0] == "ConfigMap" and [k for k, _ in kinds[1:]] == ["SparkApplication"] * 4
    shipped = op.created[0]["data"]["config.yaml"]
    assert f"prior_index: {STATE}/index/_catalogs/" in shipped and "drop_failed_files: true" in shipped
    store = Storage(w.cfg().storage)
    assert {d["url"] for d in released(store, night.run_id)} == {url("news", 700), url("news", 701)}


def test_night_where_every_file_fails_publishes_nothing(world, spark):
    w = world
    w.publish("CC-NEWS/2099/02", "gone.warc.gz", None, "missing")
    cfg = w.cfg("refresh.state=s3://refresh/allfail", "refresh.follow=[CC-NEWS/2099/02]")
    store = Storage(cfg.storage)
    night = refresh(cfg, spark=spark)
    assert night.status == "no_release" and list(night.failed) == [w.paths["gone.warc.gz"]]
    led = Ledger.load(store, "s3://refresh/allfail/ledger.parquet")
    assert (led.entries[w.paths["gone.warc.gz"]].status, led.entries[w.paths["gone.warc.gz"]].attempts) == ("failed", 1)
    assert store.read_versioned("s3://refresh/allfail/releases/_index.json") is None
    assert store.list_files("s3://refresh/allfail/releases") == []
    assert store.list_files("s3://refresh/allfail/index") == []



def _wait_for(proc, text: str, timeout: float = 420) -> list[str]:
    out, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        out.append(line)
        if text in line or (not line and proc.poll() is not None):
            break
    assert any(text in ln for ln in out), "".join(out[-40:])
    return out


def test_a_stalled_night_whose_lock_was_taken_over_stops_and_leaves_the_new_release_alone(world, tmp_path):
    """Night A is frozen (SIGSTOP) while it holds the lock, before its stages; the lock expires, night B takes it
    over, resumes A's run and commits it. A is woken up: it exits 4 within seconds, commits nothing, and writes or
    deletes nothing of B's release (catalog, index files, manifest, release index byte for byte the same)."""
    w = world
    state, item = "s3://refresh/takeover", "CC-NEWS/2099/03"
    w.publish(item, "t1.warc.gz", pages("take", 0, 3))
    w.publish(item, "t2.warc.gz", pages("take", 10, 13))
    args = [f"--set=refresh.state={state}", f"--set=refresh.follow=[{item}]"]
    store = Storage(w.cfg().storage)
    go = tmp_path / "go"
    a = mdr(w, *args, env={HOLD_ENV: "stages", HOLD_UNTIL_ENV: str(go)})
    try:
        _wait_for(a, "holding here until")
        lock = json.loads(store.read_text(f"{state}/_lock.json"))
        os.killpg(a.pid, signal.SIGSTOP)
        time.sleep(w.cfg().refresh.lease_ttl_s + 2)  # A's lock expires while it is frozen

        b = mdr(w, *args)
        text_b, _ = b.communicate(timeout=600)
        assert b.returncode == 0, text_b
        assert f"took over the expired lock of run {lock['run_id']}" in text_b
        idx = ReleaseIndex.load(store, f"{state}/releases")
        (entry,) = idx.releases
        assert entry["id"] == lock["run_id"]   # B resumed A's run and committed it
        catalog = Catalog.load(store, f"{state}/{idx.catalog()}")
        files = {u: store.read_bytes(u) for u in store.list_files(state)}
        root = f"{state}/releases/{entry['id']}"
        assert entry["generation"] == idx.generation == lock["generation"] + 1  # B's generation, fenced first
        hidden = [idx.uri, catalog.uri, f"{state}/releases/{entry['manifest']}",
                  *(f"{root}/{s}/_manifest.json" for s in w.cfg().run.stages)]
        hidden = {u: store.read_bytes(u) for u in hidden}

        go.touch()
        t0 = time.time()
        os.killpg(a.pid, signal.SIGCONT)
        text_a, _ = a.communicate(timeout=300)
        seconds = time.time() - t0
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
    assert a.returncode == 4, text_a
    assert "expired and was taken over by run" in text_a and "committed release" not in text_a
    assert f"(generation {lock['generation'] + 1}, released since)" in text_a
    assert {u: store.read_bytes(u) for u in hidden} == hidden
    assert {u: store.read_bytes(u) for u in store.list_files(state)} == files  # nothing of B's changed or deleted
    assert all(store.exists(u) for k in KINDS for u in catalog.files(k))
    docs = read_dataset(store, f"{state}/releases/{entry['dataset']}", ["id", "url"]).to_pylist()
    assert {d["url"] for d in docs} == {u for n in ("t1.warc.gz", "t2.warc.gz") for u, _, _ in w.docs[n]}
    assert seconds < 15, f"the stalled night took {seconds:.1f}s to stop:\n{text_a}"


def test_a_lost_lock_cancels_the_running_spark_job_and_stops_the_main_thread(spark, tmp_path):
    """The lock is taken from under a night while a Spark job of an hour runs in the main thread: the heartbeat
    sees it, the job is cancelled and the main thread stops within seconds; the Spark session stays usable."""
    import threading

    from pipeline.core.lease import Lease
    from pipeline.refresh.nightly import StopWhenLost
    store, uri = Storage(), str(tmp_path / "_lock.json")
    stop = StopWhenLost()
    lease = Lease(store, uri, 30, "night", on_lost=stop).acquire()

    def take_it():
        time.sleep(4)  # the job runs by then
        while True:
            cur = store.read_versioned(uri)
            if store.write_if(uri, json.dumps({"run_id": "thief", "generation": 2}).encode(), cur.etag):
                return
    threading.Thread(target=take_it, daemon=True).start()
    t0 = time.time()
    with pytest.raises(Exception) as stopped:  # noqa: PT011 - LeaseLost, or the cancelled job's error first
        with stop, lease.heartbeat(0.5):
            spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(3600) or x).count()
    seconds = time.time() - t0
    assert lease.lost and "was taken over by run thief (generation 2)" in lease.lost, stopped.value
    assert seconds < 20, f"{seconds:.1f}s"
    assert spark.range(5).count() == 5
