"""`mdr run` on real clusters: a Spark standalone cluster (a master and two 1-core worker JVMs, ``spark://``) and a
Ray cluster (a head and a second node, each its own raylet), data on the moto S3 server. All five stages run on
them; the output equals a local-mode run's (``local[2]``, local Ray) row for row. Then the same run with one
Spark worker killed during dedup_fuzzy and one Ray node killed during quality: it exits 0 and every stage's
output still equals the clean run's, row for row."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from pipeline.core.config import load_config
from pipeline.core.dataset import read_dataset, read_manifest, read_rejects
from pipeline.core.storage import Storage
from tests.clusters import RayCluster, running_standalone
from tests.conftest import ROOT

pytestmark = pytest.mark.cluster

STAGES = ("extract", "filter", "dedup_fuzzy", "dedup_exact", "quality")
TIMEOUT_S = 420


@pytest.fixture(scope="module")
def s3(s3_server, tmp_path_factory):
    """A bucket holding the sample WARC, a config file (executors of 1 GiB, no Spark UI) and the run's options."""
    from pipeline.sample.generate import write_sample_warc
    bucket = s3_server.make_bucket("cluster-runs")
    warc = f"{bucket}/crawl/sample.warc.gz"
    write_sample_warc(warc)
    cfg_file = tmp_path_factory.mktemp("cfg") / "cluster.yaml"
    cfg_file.write_text('spark:\n  conf:\n    "spark.executor.memory": "1g"\n    "spark.ui.enabled": "false"\n')
    sets = [f"storage.s3_endpoint={s3_server.endpoint}"]
    return {"bucket": bucket, "warc": warc, "config": str(cfg_file), "sets": sets,
            "store": Storage(load_config(None, sets).storage)}


@pytest.fixture(scope="module")
def local_run(s3):
    """The reference: the same input in local mode (local[2], a local Ray), run before the clusters start."""
    out = f"{s3['bucket']}/runs/local"
    proc = _mdr(s3, out, "--master", "local[2]")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def clusters(local_run, tmp_path_factory):
    with running_standalone(tmp_path_factory.mktemp("spark"), workers=2, cores=1, memory="1536m") as spark:
        ray = RayCluster(nodes=2, cpus=1).start()
        try:
            yield spark, ray
        finally:
            ray.stop()


def _cmd(s3, out: str, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--config", s3["config"], "--input", s3["warc"],
           "--output", out, *args]
    for s in s3["sets"]:
        cmd += ["--set", s]
    return cmd


def _mdr(s3, out: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(s3, out, *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def _cluster_args(clusters) -> list[str]:
    spark, ray = clusters
    return ["--master", spark.master, "--ray-address", ray.address]


def _rows(store: Storage, uri: str) -> tuple[list, list]:
    """A stage's kept rows (every column) and rejects (id, reason, details), each sorted by id."""
    kept = read_dataset(store, uri)
    rej = read_rejects(store, uri)
    cols = [c for c in ("id", "reason", "details") if c in rej.column_names]
    key = lambda r: r["id"]  # noqa: E731
    return sorted(kept.to_pylist(), key=key), sorted(rej.select(cols).to_pylist(), key=key)


def assert_same_output(store: Storage, got_root: str, want_root: str) -> None:
    for stage in STAGES:
        got, want = read_manifest(store, f"{got_root}/{stage}"), read_manifest(store, f"{want_root}/{stage}")
        assert got is not None and want is not None, stage
        assert got["counts"] == want["counts"], stage
        got_kept, got_rej = _rows(store, f"{got_root}/{stage}")
        want_kept, want_rej = _rows(store, f"{want_root}/{stage}")
        assert len(got_kept) == len(want_kept) == got["rows"], stage
        assert [r["id"] for r in got_kept] == [r["id"] for r in want_kept], stage
        assert got_kept == want_kept, f"{stage}: kept rows differ"
        assert got_rej == want_rej, f"{stage}: rejects differ"


def test_clean_cluster_run_equals_local_mode(s3, local_run, clusters):
    out = f"{s3['bucket']}/runs/cluster-clean"
    spark, _ = clusters
    proc = _mdr(s3, out, *_cluster_args(clusters), env=spark.env)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "[ray] connected to 127.0.0.1:" in proc.stderr and "2 CPUs" in proc.stderr
    # the Spark stages' tasks ran in executors of both workers
    for i in range(2):
        assert list(spark.work_dir(i).glob("app-*/*/stderr")), f"no executor ran on worker {i}"
    store = s3["store"]
    for stage in STAGES:
        man = read_manifest(store, f"{out}/{stage}")
        assert man["counts"]["in"] == man["counts"]["kept"] + sum(man["counts"]["removed"].values())
    assert read_manifest(store, f"{out}/dedup_fuzzy")["counts"]["removed"].get("fuzzy_duplicate", 0) > 0
    assert_same_output(store, out, local_run)


class Watcher:
    """Reads a run's stderr line by line; after a stage's start line (``[stage] ... -> ...``) calls that stage's
    ``ready`` until it is true (at most 120 s), then its kill, recording the wall clock of the kill."""

    def __init__(self, proc: subprocess.Popen, kills: dict) -> None:
        self.proc, self.kills, self.killed_at, self.lines = proc, kills, {}, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            for stage, (ready, kill) in self.kills.items():
                if stage not in self.killed_at and line.startswith(f"[{stage}] ") and " -> " in line:
                    deadline = time.time() + 120
                    while not ready() and time.time() < deadline:
                        time.sleep(0.05)
                    self.killed_at[stage] = time.time()
                    kill()


def test_worker_and_node_killed_mid_stage_same_output(s3, local_run, clusters):
    spark, ray = clusters
    out = f"{s3['bucket']}/runs/cluster-killed"
    proc = subprocess.Popen(_cmd(s3, out, *_cluster_args(clusters)), cwd=ROOT, env=spark.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    executors: list[int] = []
    actors: list[int] = []
    started: dict[str, float] = {}

    def after(stage: str, seconds: float, when=lambda: True):
        """Ready ``seconds`` after ``when()`` first held once the stage started."""
        def ready() -> bool:
            if stage not in started and when():
                started[stage] = time.time()
            return stage in started and time.time() - started[stage] >= seconds
        return ready

    def kill_worker() -> None:
        executors.extend(spark.executor_pids(1))  # the run's executor on that worker, killed with it
        spark.kill_worker(1)

    def kill_node() -> None:
        actors.extend(ray.worker_pids(1, "ScoreParts"))
        ray.kill_node(1)

    # dedup_fuzzy: 3 s into its Spark jobs; quality: as soon as a scoring actor of the pool runs on node 1 (on
    # this small input a work unit takes milliseconds and the whole stage a few seconds, so the node goes while
    # the pool starts and the first units are sent: two to each actor at once)
    w = Watcher(proc, {"dedup_fuzzy": (after("dedup_fuzzy", 3.0), kill_worker),
                       "quality": (after("quality", 0.0, lambda: bool(ray.worker_pids(1, "ScoreParts"))), kill_node)})
    try:
        rc = proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    w.thread.join(10)
    log = "".join(w.lines)
    assert rc == 0, log[-6000:]
    store = s3["store"]
    for stage in ("dedup_fuzzy", "quality"):
        t = read_manifest(store, f"{out}/{stage}")["timings"]
        assert stage in w.killed_at, f"nothing was killed during {stage}"
        assert t["started"] < w.killed_at[stage] < t["finished"], f"{stage}: the kill was not mid-stage ({t})"
    assert executors, "worker 1 ran no executor of the run when it was killed"
    assert actors, "node 1 ran no scoring actor of the quality stage when it was killed"
    assert_same_output(store, out, local_run)
