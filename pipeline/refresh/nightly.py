"""`mdr refresh`: one night of the incremental pipeline over the crawl files not processed yet.

1. take the lock (``pipeline.core.lease``), or stop with "locked by run X since T"; a run that takes over an expired
   lock fences the release index with its lease generation N (``ReleaseIndex.fence``), so the run it took over
   can no longer commit, and a lost lock stops the night at once (Spark jobs cancelled, exit 4);
2. read the ledger (``pipeline.refresh.ledger``) and the release index (``pipeline.refresh.releases``); the files of a release
   that committed but whose ledger update was lost are recorded from its ``_release.json``;
3. list the followed crawls (``pipeline.refresh.ccsource``): files never seen become pending;
4. pick the night's files: those of an interrupted night (resumed under its run id, so its committed stages are
   reused), else the next ``refresh.budget`` files; none: stop (a fast no-op, Spark never starts);
5. mark them in progress, then run ``run.stages`` into ``releases/<run id>/`` (the lock checked before each) with
   ``dedup_fuzzy.prior_index`` and ``dedup_exact.prior_index`` set to the last committed index catalog
   (cross-release dedup);
6. index the release's documents into a new catalog (``pipeline.refresh.prior_build``; keyed from the text each dedup
   stage looked up, before dedup_exact's cuts) and write ``_release-g<N>.json``;
7. renew the lock (a run that lost it stops here) and commit: ``releases/_index.json`` lists the release, its
   catalog and generation, in one conditional write that a newer generation's fence makes fail;
8. record each file's outcome in the ledger (done, failed, gave_up), delete unused index files, write the report.
A night stopped anywhere before 7 leaves nothing readers or later nights' dedup can see, and the next night
resumes it; stopped between 7 and 8, step 2 of the next night repairs the ledger.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from pipeline import __version__
from pipeline.core.config import Config, ConfigError
from pipeline.core.lease import Lease, LeaseLost
from pipeline.core.storage import Storage, join, scheme
from pipeline.refresh.ccsource import check_follow, check_source, expand, file_url, list_source
from pipeline.refresh.ledger import FAILED, GAVE_UP, IN_PROGRESS, Ledger
from pipeline.refresh.releases import ReleaseConflict, ReleaseIndex, read_release_manifest, write_release_manifest

HOLD_ENV = "MDR_REFRESH_HOLD_AT"   # test hook: "stages" or "commit"; the run waits there until it is killed
HOLD_UNTIL_ENV = "MDR_REFRESH_HOLD_UNTIL"   # test hook: a file; the held run goes on once it exists
RULES = {
    "url": "a document whose normalized URL an earlier release holds is removed (duplicate_url_prior)",
    "doc": "a document whose text hash an earlier release holds is removed (duplicate_text_prior)",
    "fuzzy": "a document sharing a MinHash band with an earlier release's document is removed with its whole "
             "cluster (fuzzy_duplicate_prior)",
    "substring": "exact-substring dedup runs within the night's documents only: a window index over every release "
                 "would cost a shuffle of all released text each night",
}


def log(msg: str) -> None:
    print(f"[refresh] {msg}", file=sys.stderr, flush=True)


@dataclass
class Night:
    status: str                      # released | nothing_new | no_release | dry_run
    run_id: str | None = None
    files: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    gave_up: dict[str, str] = field(default_factory=dict)
    documents: int = 0
    removed_prior: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Paths:
    state: str

    @property
    def ledger(self) -> str:
        return join(self.state, "ledger.parquet")

    @property
    def lock(self) -> str:
        return join(self.state, "_lock.json")

    @property
    def releases(self) -> str:
        return join(self.state, "releases")

    @property
    def index(self) -> str:
        return join(self.state, "index")

    def release(self, run_id: str) -> str:
        return join(self.releases, run_id)


def check_config(cfg: Config, target: str) -> Paths:
    r = cfg.refresh
    if not r.state:
        raise ConfigError("refresh.state: no state root; pass --state s3://bucket/prefix (ledger, lock, indexes and "
                          "releases live there)")
    check_follow(list(r.follow))
    stages = list(cfg.run.stages)
    if not stages or stages[0] != "extract" or not {"dedup_fuzzy", "dedup_exact"} <= set(stages):
        raise ConfigError(f"run.stages: {stages}: a refresh starts with extract and needs dedup_fuzzy and dedup_exact "
                          f"(cross-release dedup happens there), e.g. "
                          f"[extract, filter, dedup_fuzzy, dedup_exact, quality]")
    if target == "k8s":
        for what, uri in (("refresh.state", r.state), ("refresh.source", r.source)):
            if scheme(uri) == "file":
                raise ConfigError(f"{what} {uri}: the cluster cannot reach this machine's files; use s3:// (and "
                                  f"https:// for the source)")
    return Paths(r.state.rstrip("/"))


def night_config(cfg: Config, catalog: str | None) -> Config:
    """The night's stage config: failed files, those the source did not serve after retries too, go to the ledger
    instead of failing the night (and give no document, so a retried file is processed whole), and the dedup
    stages check the earlier releases."""
    c = copy.deepcopy(cfg)
    c.run.max_failed_input_share = 1.0
    c.run.transient_input_errors = "failed_input"
    c.extract.drop_failed_files = True
    c.dedup_fuzzy.prior_index = catalog
    c.dedup_exact.prior_index = catalog
    return c


def _hold(step: str) -> None:
    if os.environ.get(HOLD_ENV) == step:
        until = os.environ.get(HOLD_UNTIL_ENV)
        log(f"{HOLD_ENV}={step}: holding here until {f'{until} exists' if until else 'killed'} (test hook)")
        while not (until and os.path.exists(until)):
            time.sleep(0.2)


def listing_name(generation: int) -> str:
    """The night's WARC listing in the release folder, written by lease generation ``generation``."""
    return f"_warc-g{generation}.paths"


class StopWhenLost:
    """A night's lost-lock callback (``Lease.on_lost``): cancel the running Spark jobs and raise LeaseLost in the
    main thread, through a signal so that a blocking call there (a Spark job, a wait) is interrupted too. Armed
    only inside ``with``, and only when entered on the main thread (elsewhere the stage loop's lock checks stop
    the night)."""
    SIGNAL = signal.SIGUSR1

    def __init__(self) -> None:
        self._main = threading.main_thread()
        self._lock = threading.Lock()
        self._armed, self._previous, self.message = False, None, None

    def __enter__(self) -> "StopWhenLost":
        if threading.current_thread() is self._main:
            self._previous = signal.signal(self.SIGNAL, self._raise)
            self._armed = True
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            armed, self._armed = self._armed, False
        if armed:
            signal.signal(self.SIGNAL, self._previous)

    def _raise(self, signum, frame) -> None:
        """The signal handler (main thread): no lock here, the main thread may hold it in ``__exit__``."""
        if self._armed and self.message is not None:
            self._armed = False
            raise LeaseLost(self.message)

    def __call__(self, message: str) -> None:
        self.message = message
        log("the lock was lost: cancelling the Spark jobs and stopping this run")
        if "pyspark" in sys.modules:
            from pyspark import SparkContext
            sc = SparkContext._active_spark_context
            if sc is not None:
                try:
                    sc.cancelAllJobs()
                except Exception as e:  # noqa: BLE001 - the main thread is stopped anyway
                    log(f"note: could not cancel the Spark jobs: {type(e).__name__}: {e}")
        if threading.current_thread() is not self._main:
            with self._lock:
                if self._armed:
                    signal.pthread_kill(self._main.ident, self.SIGNAL)


def _new_run_id(taken: set[str]) -> str:
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 2
    while run_id in taken:
        run_id = f"{run_id.split('-')[0]}-{n}"
        n += 1
    return run_id


def _prior_catalog(store: Storage, cfg: Config, paths: Paths, releases: ReleaseIndex):
    from pipeline.core.prior_index import load_checked
    rel = releases.catalog()
    return load_checked(store, join(paths.state, rel), cfg, ("minhash", "url", "doc")) if rel else None


def _pick(store: Storage, cfg: Config, paths: Paths, ledger: Ledger, releases: ReleaseIndex, night: Night,
          write: bool) -> tuple[str | None, list]:
    """Steps 2-4: repair, list, choose. Returns (run id to resume or None, the night's ledger entries)."""
    r = cfg.refresh
    for run_id, entries in ledger.stale_runs().items():  # committed, ledger not updated: repair from its manifest
        if run_id in releases.ids():
            man = read_release_manifest(store, paths.releases, releases.entry(run_id)) or {"files": []}
            ledger.finish(run_id, run_id, {f["path"]: f for f in man["files"]}, r.max_attempts)
            log(f"release {run_id} was committed but its files were still in progress: recorded {len(entries)} files")
            if write and releases.catalog():
                from pipeline.refresh.prior_build import collect_garbage
                from pipeline.core.prior_index import Catalog
                collect_garbage(store, Catalog.load(store, join(paths.state, releases.catalog())))

    def warn(w: str) -> None:
        night.warnings.append(w)
        log(f"warning: {w}")
    items = expand(store, r, dt.datetime.now(dt.timezone.utc).date(), warn)
    listed = list_source(store, r.source, items, warn)
    new = ledger.add_listed(listed)
    log(f"listed {len(listed):,} WARC files in {', '.join(items) or 'nothing'}: {new:,} new; ledger "
        + ", ".join(f"{k} {v:,}" for k, v in ledger.counts().items() if v))
    stale = ledger.stale_runs()
    if stale:
        run_id = sorted(stale)[0]
        entries = [e for rid in sorted(stale) for e in stale[rid]]
        log(f"run {run_id} did not finish ({len(entries)} files in progress): resuming it")
        if write:
            before = {e.path for e in entries}
            entries = ledger.interrupt(entries, r.max_attempts)
            for p in sorted(before - {e.path for e in entries}):
                night.gave_up[p] = ledger.entries[p].error or ""
        return run_id, entries
    return None, ledger.select(r.budget)


def dry_run(cfg: Config) -> Night:
    """What the next night would take, without the lock and without writing anything."""
    store, paths = Storage(cfg.storage), check_config(cfg, "local")
    check_source(store, cfg.refresh.source)
    night = Night("dry_run")
    ledger, releases = Ledger.load(store, paths.ledger, lazy=True), ReleaseIndex.load(store, paths.releases)
    resume, batch = _pick(store, cfg, paths, ledger, releases, night, write=False)
    night.run_id, night.files = resume, [e.path for e in batch]
    log(("would resume run " + resume if resume else f"would take {len(batch)} files (budget {cfg.refresh.budget})")
        + "".join(f"\n  {e.path} ({e.status}{', attempt ' + str(e.attempts + 1) if e.attempts else ''})"
                  for e in batch))
    return night


def refresh(cfg: Config, *, target: str = "local", spark=None, master: str | None = None, k8s_api=None,
            force: bool = False) -> Night:
    """One night. Raises LeaseHeld when another refresh holds the lock (nothing done), LeaseLost when this run's
    lock was taken over (it stopped without committing)."""
    t0 = time.time()
    store, paths = Storage(cfg.storage), check_config(cfg, target)
    check_source(store, cfg.refresh.source)
    releases = ReleaseIndex.load(store, paths.releases)
    _prior_catalog(store, cfg, paths, releases)  # MinHash / URL rules changed since the last release: fail now
    stop = StopWhenLost()
    lease = Lease(store, paths.lock, cfg.refresh.lease_ttl_s, _new_run_id(releases.ids()),
                  on_lost=stop).acquire(min_generation=releases.generation)
    log(f"lock taken at {paths.lock} (run {lease.run_id}, generation {lease.generation}, "
        f"ttl {cfg.refresh.lease_ttl_s:.0f}s)")
    try:
        with stop, lease.heartbeat(cfg.refresh.heartbeat_s):
            if lease.taken_over is not None:
                _fenced(lease, lambda: releases.fence(store, lease.generation))
                log(f"fenced {releases.uri} at generation {lease.generation}: the run taken over cannot commit")
            night = _night(cfg, store, paths, lease, target, spark, master, k8s_api, force)
    except LeaseLost:
        raise
    except BaseException as e:  # a Spark job cancelled, a wait interrupted: because the lock was lost
        if lease.lost:
            raise LeaseLost(lease.lost) from e
        raise
    finally:
        lease.release()
    night.seconds = round(time.time() - t0, 2)
    summarize(night)
    return night


def _night(cfg: Config, store: Storage, paths: Paths, lease: Lease, target: str, spark, master, k8s_api,
           force: bool) -> Night:
    r, night = cfg.refresh, Night("released")
    ledger = Ledger.load(store, paths.ledger, lazy=True)
    releases = ReleaseIndex.load(store, paths.releases)
    resume, batch = _pick(store, cfg, paths, ledger, releases, night, write=True)
    if not batch:
        ledger.save(store)
        night.status = "nothing_new"
        return night
    run_id, gen = resume or lease.run_id, lease.generation
    lease.run_id = run_id
    lease.renew()  # the lock now names the run it protects
    ledger.start(batch, run_id)
    ledger.save(store)
    night.run_id, night.files = run_id, sorted(e.path for e in batch)
    root = paths.release(run_id)
    url_of = {file_url(r.source, e.path): e for e in batch}
    listing = join(root, listing_name(gen))
    store.write_text(listing, "".join(u + "\n" for u in sorted(url_of)))
    log(f"run {run_id}: {len(batch)} files -> {root}/")
    prior = _prior_catalog(store, cfg, paths, releases)
    ncfg = night_config(cfg, prior.uri if prior else None)
    _hold("stages")
    manifests = _run_stages(ncfg, store, listing, root, run_id, target, spark, master, k8s_api, force, lease)

    extract = manifests[0]
    errors = {f["file"]: f["error"] for f in extract.get("failed_inputs", [])}
    read = {i["file"]: i for i in extract.get("stats", {}).get("inputs", [])}
    outcomes = {}
    for url, e in url_of.items():
        err = errors.get(url) or (None if url in read else "extract did not read it")
        outcomes[e.path] = {"path": e.path, "url": url, "source": e.source, "error": err,
                            "documents": None if err else read[url].get("kept")}
    night.failed = {p: o["error"] for p, o in outcomes.items() if o["error"]}
    night.removed_prior = {k: v for m in manifests for k, v in m["counts"]["removed"].items() if k.endswith("_prior")}
    final = manifests[-1]
    night.documents = final["rows"]
    if len(night.failed) == len(outcomes):  # nothing read: no release; the files are retried on later nights
        lease.check()
        ledger.finish(run_id, None, outcomes, r.max_attempts)
        ledger.save(store)
        night.status = "no_release"
        night.gave_up.update({p: ledger.entries[p].error or "" for p in night.failed
                              if ledger.entries[p].status == GAVE_UP})
        store.delete(root)
        return night

    from pipeline.refresh.prior_build import build_catalog, collect_garbage
    from pipeline.run.runner import publish_run
    sp = spark
    if sp is None:
        from pipeline.core.spark import get_spark
        sp = get_spark(ncfg, master if target == "local" else "local[*]")
    dataset = join(root, final["stage"])
    lease.check()
    catalog = build_catalog(sp, store, ncfg, dataset, run_id, paths.index, prior, generation=gen)
    rel_catalog = catalog.uri[len(paths.state) + 1:]
    manifest = {
        "format": "mdr.release/1", "id": run_id, "generation": gen,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code_version": __version__, "source": r.source, "documents": final["rows"],
        "dataset": f"{run_id}/{final['stage']}", "stages": {m["stage"]: m["counts"] for m in manifests},
        "files": [outcomes[p] for p in sorted(outcomes)],
        "prior": {"releases": prior.releases if prior else [],
                  "catalog": prior.uri[len(paths.state) + 1:] if prior else None},
        "index": {"catalog": rel_catalog, "added": catalog.data["added"], "rows": catalog.data["rows"]},
        "dedup_across_releases": RULES,
        "config_hash": ncfg.section_hash(*[s for s in ("extract", "filter", "dedup_fuzzy", "dedup_exact", "quality")]),
    }
    lease.check()
    name = write_release_manifest(store, root, manifest)
    _hold("commit")
    lease.check()  # a run whose lock was taken over stops here, before anything becomes visible
    entry = {"id": run_id, "created": manifest["created"], "path": f"{run_id}/", "dataset": manifest["dataset"],
             "documents": final["rows"], "warc_files": len(outcomes) - len(night.failed),
             "failed_files": len(night.failed), "catalog": rel_catalog, "generation": gen,
             "manifest": f"{run_id}/{name}"}
    _fenced(lease, lambda: releases.commit(store, entry, rel_catalog, gen))  # fails if a newer generation fenced
    log(f"committed release {run_id}: {final['rows']:,} documents ({paths.releases}/_index.json)")
    ledger.finish(run_id, run_id, outcomes, r.max_attempts)
    ledger.save(store)
    night.gave_up.update({p: ledger.entries[p].error or "" for p in night.failed
                          if ledger.entries[p].status == GAVE_UP})
    removed = collect_garbage(store, catalog)
    if removed:
        log(f"deleted {removed} index files no live catalog lists")
    publish_run(store, root)
    return night


def _fenced(lease: Lease, write):
    """A conditional write of the release index; refused because a newer generation fenced it: LeaseLost."""
    try:
        return write()
    except ReleaseConflict:
        lease.check()  # taken over: LeaseLost says by whom
        raise


def _run_stages(cfg: Config, store: Storage, listing: str, root: str, run_id: str, target: str, spark, master,
                k8s_api, force: bool, lease: Lease) -> list[dict]:
    stages = list(cfg.run.stages)
    if target == "k8s":
        lease.check()
        from pipeline.cluster.submit import plan_run, submit_run
        from pipeline.cluster.submit_k8s import K8S_MASTER, K8sTarget
        plan = plan_run(cfg, store, input_uri=listing, root=root, stages=stages,
                        run_name=f"mdr-r-{run_id.lower()}"[:30], force=force, spark_master=K8S_MASTER,
                        ray_address="auto", needs_remote=True)
        return submit_run(cfg, store, plan, K8sTarget(cfg, api=k8s_api))
    from pipeline.run.runner import run_stage, stage_output
    manifests, src = [], listing
    for name in stages:
        lease.check()  # a run whose lock was taken over starts no further stage
        manifests.append(run_stage(cfg, name, src, stage_output(root, name), spark=spark, master=master, force=force))
        src = stage_output(root, name)
    return manifests


def summarize(night: Night) -> None:
    if night.status == "nothing_new":
        log(f"nothing new to process ({night.seconds:.1f}s)")
        return
    failed = f", {len(night.failed)} failed (retried on a later night)" if night.failed else ""
    prior = ", ".join(f"{k}={v:,}" for k, v in sorted(night.removed_prior.items())) or "none"
    what = f"release {night.run_id}" if night.status == "released" else f"run {night.run_id}: no release"
    log(f"{what}: {len(night.files)} files{failed}; {night.documents:,} documents; removed as duplicates of earlier "
        f"releases: {prior} ({night.seconds:.1f}s)")
    for p, err in sorted(night.failed.items()):
        log(f"  failed: {p}: {err}")
    for p, err in sorted(night.gave_up.items()):
        log(f"  GAVE UP (not retried; fix or remove it from the listing): {p}: {err}")


def status(cfg: Config) -> int:
    """`mdr refresh --status`: ledger counts, files given up, the lock, the latest releases."""
    import json
    store, paths = Storage(cfg.storage), check_config(cfg, "local")
    ledger, releases = Ledger.load(store, paths.ledger), ReleaseIndex.load(store, paths.releases)
    print(f"state root {paths.state}")
    print("files: " + ", ".join(f"{k} {v:,}" for k, v in ledger.counts().items()))
    for title, st in (("in progress", IN_PROGRESS), ("failed (will be retried)", FAILED), ("gave up", GAVE_UP)):
        rows = ledger.with_status(st)
        if rows:
            print(f"{title}:")
            for e in rows[:50]:
                extra = f" run {e.run_id}" if st == IN_PROGRESS else f" after {e.attempts} attempts: {e.error}"
                print(f"  {e.path}{extra}")
    lock = store.read_versioned(paths.lock)
    held = json.loads(lock.data) if lock else None
    if held and not held.get("released"):
        print(f"lock: held by run {held.get('run_id')} since {held.get('acquired')} (generation "
              f"{held.get('generation', '?')})")
    else:
        print("lock: free" + (f" (last held by run {held.get('run_id')}, generation {held.get('generation', '?')}, "
                              f"released {held['released']})" if held else ""))
    for rel in releases.releases[-5:]:
        print(f"release {rel['id']}: {rel['documents']:,} documents from {rel['warc_files']} files "
              f"({rel['failed_files']} failed) -> {join(paths.releases, rel['dataset'])}")
    return 0

