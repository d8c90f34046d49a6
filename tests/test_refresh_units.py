"""The refresh's parts without Spark, on real servers (moto S3, an HTTP server on 127.0.0.1): the lease (two
refreshes at once, expiry and takeover, generations, heartbeat), fencing of the release index, index garbage
collection across generations, the ledger's order and outcomes, Common Crawl listings, and the refresh's
configuration checks."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from pipeline.core.config import ConfigError, RefreshConfig, load_config
from pipeline.core.lease import Lease, LeaseHeld, LeaseLost
from pipeline.core.storage import Storage, StorageError
from pipeline.refresh.ccsource import expand, list_source, news_months
from pipeline.refresh.ledger import DONE, FAILED, GAVE_UP, PENDING, Ledger


@pytest.fixture(scope="module")
def roots(s3_server, tmp_path_factory):
    s3_server.make_bucket("units")
    return {"s3": "s3://units/state", "local": str(tmp_path_factory.mktemp("state"))}


@pytest.mark.parametrize("where", ["s3", "local"])
def test_two_refreshes_at_once_one_gets_the_lock(roots, where):
    store, uri = Storage(), f"{roots[where]}/race/_lock.json"
    won, lost, go = [], [], threading.Barrier(6)

    def take(i):
        go.wait()
        try:
            won.append(Lease(store, uri, 60, f"run-{i}").acquire())
        except LeaseHeld as e:
            lost.append(str(e))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 5 and won[0].generation == 1
    assert all(f"locked by run {won[0].run_id} since " in m and "expires in" in m for m in lost)
    won[0].release()
    assert json.loads(store.read_versioned(uri).data)["released"]  # marked released: its generation stays
    after = Lease(store, uri, 60, "after").acquire()  # free again, at once
    assert after.generation == 2 and after.taken_over is None
    after.release()


def test_expired_lease_is_taken_over_and_the_old_holder_cannot_commit(roots):
    store, uri = Storage(), f"{roots['s3']}/expiry/_lock.json"
    old = Lease(store, uri, 2, "crashed-run").acquire()
    with pytest.raises(LeaseHeld, match="locked by run crashed-run"):
        Lease(store, uri, 2, "too-early").acquire()
    time.sleep(3.2)  # S3 Last-Modified has 1-second resolution
    new = Lease(store, uri, 60, "next-night").acquire()
    assert new.taken_over["run_id"] == "crashed-run" and (old.generation, new.generation) == (1, 2)
    with pytest.raises(LeaseLost, match=r"was taken over by run next-night \(generation 2\)"):
        old.check()   # the old run wakes up: it must not commit
    old.release()     # a lost lease is never deleted by its old holder
    assert json.loads(store.read_versioned(uri).data)["run_id"] == "next-night"
    new.renew()
    new.release()


def test_heartbeat_keeps_a_long_run_locked(roots):
    store, uri = Storage(), f"{roots['s3']}/beat/_lock.json"
    lease = Lease(store, uri, 3, "long-run").acquire()
    with lease.heartbeat(0.5):
        time.sleep(4.5)  # longer than the ttl: renewals keep it
        with pytest.raises(LeaseHeld):
            Lease(store, uri, 3, "other").acquire()
    lease.check()
    lease.release()


class FlakyStore(Storage):
    """A real storage whose conditional writes raise an unexpected error: the first ``fail`` of them, or all."""

    def __init__(self, fail: int | None) -> None:
        super().__init__()
        self.fail, self.failures, self.armed = fail, 0, False

    def write_if(self, uri, data, etag):
        if self.armed and (self.fail is None or self.failures < self.fail):
            self.failures += 1
            raise ValueError("unexpected answer from the store")
        return super().write_if(uri, data, etag)


def test_heartbeat_survives_an_unexpected_renewal_error(roots, capfd):
    store = FlakyStore(fail=1)
    uri = f"{roots['local']}/flaky/_lock.json"
    lost = []
    lease = Lease(store, uri, 2, "long-run", on_lost=lost.append).acquire()
    store.armed = True
    with lease.heartbeat(0.3):
        time.sleep(3.5)  # longer than the ttl: the renewals after the failed one keep it
        with pytest.raises(LeaseHeld):
            Lease(Storage(), uri, 2, "other").acquire()
    assert store.failures == 1 and not lease.lost and not lost
    err = capfd.readouterr().err
    assert f"[lease] {uri}: renewal failed (ValueError: unexpected answer from the store)" in err
    lease.check()
    lease.release()


def test_heartbeat_that_cannot_renew_marks_the_lease_lost_at_expiry(roots, capfd):
    store = FlakyStore(fail=None)
    uri = f"{roots['local']}/down/_lock.json"
    lost = []
    lease = Lease(store, uri, 1.5, "cut-off", on_lost=lost.append).acquire()
    store.armed = True
    t0 = time.monotonic()
    with lease.heartbeat(0.4):
        while not lost and time.monotonic() - t0 < 5:
            time.sleep(0.05)
    assert 1.4 <= time.monotonic() - t0 < 2.5  # at expiry, not before, not much later
    assert len(lost) == 1 and "no renewal got through for 2s" in lost[0] and uri in lost[0]
    assert lease.lost == lost[0] and store.failures >= 3
    with pytest.raises(LeaseLost, match="expired"):
        lease.check()   # the run stops without committing
    assert len(lost) == 1
    assert "renewal failed (ValueError" in capfd.readouterr().err


def test_taking_over_fences_the_release_index_so_the_old_holder_cannot_commit(roots):
    """The old holder passed its lock check just before its lease expired and was taken over: its commit, prepared
    from the index it read, fails; so does one from a fresh read of the index, since the generation is older."""
    from pipeline.refresh.releases import ReleaseConflict, ReleaseIndex
    store, state = Storage(), f"{roots['s3']}/fence"
    old = Lease(store, f"{state}/_lock.json", 2, "stalled").acquire()
    seen = ReleaseIndex.load(store, f"{state}/releases")   # read at its start: no release yet
    time.sleep(3.2)
    new = Lease(store, f"{state}/_lock.json", 60, "next").acquire(min_generation=seen.generation)
    fenced = ReleaseIndex.load(store, f"{state}/releases").fence(store, new.generation)
    assert fenced.generation == new.generation == 2 and fenced.releases == []
    with pytest.raises(ReleaseConflict, match="changed since this run read it"):
        seen.commit(store, {"id": "R-old"}, "index/_catalogs/R-old-g1.json", old.generation)
    with pytest.raises(ReleaseConflict, match="generation 2 took over the refresh after this run"):
        ReleaseIndex.load(store, f"{state}/releases").commit(store, {"id": "R-old"}, "c", old.generation)
    idx = ReleaseIndex.load(store, f"{state}/releases").commit(store, {"id": "R", "generation": 2}, "c", 2)
    assert [r["id"] for r in idx.releases] == ["R"] and idx.generation == 2
    with pytest.raises(ReleaseConflict, match="generation 2 took over"):
        idx.fence(store, 2)  # a fence never goes back or repeats
    new.release()


def test_index_garbage_of_a_release_is_collected_up_to_its_generation_never_newer(tmp_path):
    from pipeline.refresh.prior_build import collect_garbage
    from pipeline.core.prior_index import CATALOGS, Catalog
    store, root = Storage(), str(tmp_path / "index")
    files = {p: f"{root}/{p}" for p in ("R/g2/url/b=0000-live.parquet", "R/g2/url/b=0000-retry.parquet",
                                        "R/g1/url/b=0000-old.parquet", "R/url/b=0000-legacy.parquet",
                                        "R/g3/url/b=0000-newer.parquet", "Q/g1/url/b=0000-other.parquet")}
    for uri in files.values():
        store.write_bytes(uri, b"x")
    cat = Catalog(f"{root}/{CATALOGS}/R-g2.json", {"release": "R", "generation": 2, "replaced": [], "files": {
        "url": {"0": [{"path": "R/g2/url/b=0000-live.parquet"}, {"path": "Q/g1/url/b=0000-other.parquet"}]}}})
    assert collect_garbage(store, cat) == 3
    assert {p for p, u in files.items() if store.exists(u)} == {
        "R/g2/url/b=0000-live.parquet", "R/g3/url/b=0000-newer.parquet", "Q/g1/url/b=0000-other.parquet"}


def test_ledger_order_outcomes_and_limits(roots):
    store = Storage()
    led = Ledger.load(store, f"{roots['s3']}/ledger.parquet")
    big = [("CC-MAIN-2099-05", f"crawl-data/CC-MAIN-2099-05/w{i:03d}.warc.gz") for i in range(50)]
    news = [("CC-NEWS/2099/01", f"crawl-data/CC-NEWS/2099/01/n{i}.warc.gz") for i in range(3)]
    assert led.add_listed(list(reversed(big)) + news) == 53
    assert led.add_listed(news) == 0
    picked = [e.path for e in led.select(6)]   # sources in turn, each in path order: the big crawl starves nobody
    assert picked == [big[0][1], news[0][1], big[1][1], news[1][1], big[2][1], news[2][1]]
    batch = led.select(2)
    led.start(batch, "r1")
    led.finish("r1", "r1", {batch[0].path: {"error": None, "documents": 7},
                            batch[1].path: {"error": "HTTP 404 Not Found"}}, max_attempts=2)
    led.save(store)
    again = Ledger.load(store, led.uri)
    assert again.entries[batch[0].path].status == DONE and again.entries[batch[0].path].documents == 7
    e = again.entries[batch[1].path]
    assert (e.status, e.attempts, e.error) == (FAILED, 1, "HTTP 404 Not Found")
    assert batch[1].path in [x.path for x in again.select(100)]  # retried on a later night
    again.start([e], "r2")
    again.finish("r2", "r2", {e.path: {"error": "HTTP 404 Not Found"}}, max_attempts=2)
    assert again.entries[e.path].status == GAVE_UP and e.path not in [x.path for x in again.select(100)]
    stale = again.select(1)
    again.start(stale, "r3")
    assert again.interrupt(stale, max_attempts=1) == [] and again.entries[stale[0].path].status == GAVE_UP
    again.save(store)
    with pytest.raises(StorageError, match="changed by another run"):
        led.save(store)  # written from a stale read: refused
    assert again.counts()[PENDING] == 50


def test_listings_latest_and_news_months(fake_cc):
    fake_cc.set_collinfo(["CC-MAIN-2099-05", "CC-MAIN-2098-50", "CC-NEWS"])
    fake_cc.publish("CC-MAIN-2099-05", "m.warc.gz", b"x")
    fake_cc.publish("CC-NEWS/2099/03", "n.warc.gz", b"x")
    cfg = load_config(None, [f"storage.http_base_urls=[{fake_cc.base}]", f"refresh.source={fake_cc.base}",
                             "refresh.follow=[latest, CC-NEWS/2099/03, CC-NEWS/2099/04]"])
    store, warnings = Storage(cfg.storage), []
    items = expand(store, cfg.refresh, dt.date(2099, 3, 10), warnings.append)
    assert items == ["CC-MAIN-2099-05", "CC-NEWS/2099/03", "CC-NEWS/2099/04"]
    listed = list_source(store, cfg.refresh.source, items, warnings.append)
    assert listed == [("CC-MAIN-2099-05", "crawl-data/CC-MAIN-2099-05/segments/1/warc/m.warc.gz"),
                      ("CC-NEWS/2099/03", "crawl-data/CC-NEWS/2099/03/n.warc.gz")]
    assert len(warnings) == 1 and "CC-NEWS/2099/04: cannot read its listing" in warnings[0] and "404" in warnings[0]
    assert news_months(dt.date(2099, 1, 3)) == ["CC-NEWS/2098/12", "CC-NEWS/2099/01"]
    assert RefreshConfig().source == "https://data.commoncrawl.org/"


@pytest.mark.parametrize("override, message", [
    ("refresh.follow=[CC-NEWS/2099/13]", "is not a crawl to follow"),
    ("refresh.heartbeat_s=700", "more than a third of refresh.lease_ttl_s"),
    ("refresh.budget=0", "refresh.budget: 0 is out of range"),
])
def test_refresh_config_is_checked(override, message):
    from pipeline.refresh.nightly import check_config
    with pytest.raises(ConfigError, match=message):
        check_config(load_config(None, ["refresh.state=s3://b/s", override]), "local")


def test_refresh_refuses_sources_and_stage_lists_it_cannot_use():
    from pipeline.refresh.ccsource import check_source
    from pipeline.refresh.nightly import check_config
    with pytest.raises(ConfigError, match="needs dedup_fuzzy and dedup_exact"):
        check_config(load_config(None, ["refresh.state=s3://b/s", "run.stages=[extract, filter]"]), "local")
    with pytest.raises(ConfigError, match="no state root"):
        check_config(load_config(), "local")
    with pytest.raises(ConfigError, match="cluster cannot reach"):
        check_config(load_config(None, ["refresh.state=/tmp/state"]), "k8s")
    with pytest.raises(ConfigError, match=r"add it: --set 'storage.http_base_urls=\[http://mirror.example/\]'"):
        check_source(Storage(), "http://mirror.example/")


def test_release_committed_but_ledger_not_updated_is_repaired_next_night(s3_server, fake_cc):
    """A night that died between its commit and its ledger update: the next night records the files' outcomes
    from the release's _release.json, deletes the release's unused index files, and finds nothing new."""
    from pipeline.core.prior_index import CATALOGS, FORMAT, index_params
    from pipeline.refresh.nightly import refresh
    from pipeline.refresh.releases import ReleaseIndex, write_release_manifest
    p1 = fake_cc.publish("CC-NEWS/2099/05", "a.warc.gz", b"x")
    p2 = fake_cc.publish("CC-NEWS/2099/05", "b.warc.gz", None, "missing")
    state = "s3://units/repair"
    cfg = load_config(None, [f"storage.http_base_urls=[{fake_cc.base}]", f"refresh.source={fake_cc.base}",
                             "refresh.follow=[CC-NEWS/2099/05]", f"refresh.state={state}", "refresh.max_attempts=1"])
    store = Storage(cfg.storage)
    led = Ledger.load(store, f"{state}/ledger.parquet")
    led.add_listed([("CC-NEWS/2099/05", p1), ("CC-NEWS/2099/05", p2)])
    led.start(list(led.entries.values()), "R1")
    led.save(store)
    name = write_release_manifest(store, f"{state}/releases/R1", {"generation": 1, "files": [
        {"path": p1, "error": None, "documents": 3}, {"path": p2, "error": "HTTP 404 Not Found", "documents": None}]})
    catalog = f"index/{CATALOGS}/R1-g1.json"
    store.write_text(f"{state}/{catalog}", json.dumps({"format": FORMAT, "release": "R1", "generation": 1,
                                                       "buckets": 1, "params": index_params(cfg), "releases": ["R1"],
                                                       "files": {}}))
    orphan = f"{state}/index/R1/g1/url/b=0000-dead.parquet"
    store.write_bytes(orphan, b"left by an earlier attempt")
    ReleaseIndex.load(store, f"{state}/releases").commit(
        store, {"id": "R1", "generation": 1, "manifest": f"R1/{name}"}, catalog, 1)

    night = refresh(cfg)
    assert night.status == "nothing_new"
    led = Ledger.load(store, f"{state}/ledger.parquet")
    assert (led.entries[p1].status, led.entries[p1].release, led.entries[p1].documents) == (DONE, "R1", 3)
    assert (led.entries[p2].status, led.entries[p2].error) == (GAVE_UP, "HTTP 404 Not Found")
    assert not store.exists(orphan)


def test_dry_run_lists_the_next_files_and_writes_nothing(s3_server, fake_cc):
    from pipeline.refresh.nightly import dry_run
    paths = [fake_cc.publish("CC-NEWS/2099/06", f"d{i}.warc.gz", b"x") for i in (2, 0, 1)]
    state = "s3://units/dry"
    cfg = load_config(None, [f"storage.http_base_urls=[{fake_cc.base}]", f"refresh.source={fake_cc.base}",
                             "refresh.follow=[CC-NEWS/2099/06]", f"refresh.state={state}", "refresh.budget=2"])
    night = dry_run(cfg)
    assert night.files == sorted(paths)[:2] and night.run_id is None
    assert Storage(cfg.storage).list_files(state) == []  # no ledger, no lock, nothing


def test_ledger_is_sharded_by_source_and_a_save_rewrites_only_the_changed_ones(roots):
    """Before: one object holding every file ever listed, read and rewritten whole every night."""
    store, uri = Storage(), f"{roots['s3']}/sharded/ledger.parquet"
    led = Ledger.load(store, uri)
    old = [("CC-MAIN-2099-01", f"crawl-data/CC-MAIN-2099-01/o{i}.warc.gz") for i in range(20)]
    news = [("CC-NEWS/2099/02", f"crawl-data/CC-NEWS/2099/02/n{i}.warc.gz") for i in range(3)]
    led.add_listed(old + news)
    done = [led.entries[p] for _, p in old]
    led.start(done, "r1")
    led.finish("r1", "r1", {e.path: {"error": None, "documents": 1} for e in done}, max_attempts=2)
    led.save(store)
    objects = set(store.list_files(f"{roots['s3']}/sharded", hidden=True))
    assert not store.exists(uri) and len(objects) == 3           # the head and one object per source
    old_shard = Ledger.load(store, uri).shards["CC-MAIN-2099-01"]["path"]

    night = Ledger.load(store, uri, lazy=True)                    # a night: only sources with open files
    assert set(night.entries) == {p for _, p in news} and night.counts()[DONE] == 20
    assert night.add_listed(old[:2]) == 0                         # listed again: loaded, nothing new
    batch = night.select(2)
    night.start(batch, "r2")
    night.save(store)
    again = Ledger.load(store, uri)
    assert again.shards["CC-MAIN-2099-01"]["path"] == old_shard   # the finished crawl's object was not rewritten
    assert {p for p, e in again.entries.items() if e.status == "in_progress"} == {e.path for e in batch}
    assert len(store.list_files(f"{roots['s3']}/sharded", hidden=True)) == 3   # the replaced object was deleted
    with pytest.raises(StorageError, match="changed by another run"):
        led.add_listed([("CC-NEWS/2099/02", "crawl-data/CC-NEWS/2099/02/late.warc.gz")])
        led.save(store)                                           # from a stale read: refused, nothing changed
    assert len(store.list_files(f"{roots['s3']}/sharded", hidden=True)) == 3
    assert Ledger.load(store, uri).counts() == again.counts()


def test_a_ledger_of_the_single_object_layout_is_read_and_migrated_at_its_first_save(roots):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.refresh.ledger import SCHEMA
    store, uri = Storage(), f"{roots['s3']}/legacy/ledger.parquet"
    rows = [{"path": f"crawl-data/CC-MAIN-2099-03/w{i}.warc.gz", "source": "CC-MAIN-2099-03",
             "status": DONE if i < 2 else PENDING, "attempts": 0, "interrupted": 0, "run_id": None,
             "release": "R0" if i < 2 else None, "error": None, "documents": 5 if i < 2 else None,
             "first_seen": "2099-01-01T00:00:00Z", "updated": "2099-01-01T00:00:00Z"} for i in range(4)]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf)
    store.write_bytes(uri, buf.getvalue())
    led = Ledger.load(store, uri, lazy=True)
    assert led.counts() == {PENDING: 2, "in_progress": 0, DONE: 2, FAILED: 0, GAVE_UP: 0}
    assert led.entries[rows[0]["path"]].documents == 5
    led.start(led.select(1), "R1")
    led.save(store)
    assert not store.exists(uri)
    after = Ledger.load(store, uri)
    assert after.counts() == {PENDING: 1, "in_progress": 1, DONE: 2, FAILED: 0, GAVE_UP: 0}
    assert after.entries[rows[1]["path"]].release == "R0"
