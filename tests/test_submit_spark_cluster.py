"""`mdr submit --target spark-submit` for real: a Spark standalone master and worker started here on 127.0.0.1,
the extract stage submitted with spark-submit (code shipped with --archives, config with --files), data on the
moto S3 server; then a re-submission that finds the stage committed and submits nothing."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.dataset import read_dataset, read_manifest
from pipeline.runner import registry, stage_hash
from pipeline.storage import Storage
from tests.conftest import ROOT
from tests.s3server import free_port, port_open


def _wait_for(pred, what: str, timeout: float, log: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def standalone(s3_server, tmp_path_factory):
    """A Spark standalone cluster from pyspark's own bin/ (spark-class): one master, one 2-core worker."""
    import pyspark
    spark_home = Path(pyspark.__file__).parent
    spark_class = spark_home / "bin" / "spark-class"
    if not spark_class.exists():
        pytest.skip(f"{spark_class} is absent: this pyspark has no bundled launcher scripts")
    d = tmp_path_factory.mktemp("standalone")
    env = dict(os.environ, SPARK_HOME=str(spark_home), SPARK_LOCAL_IP="127.0.0.1", SPARK_DAEMON_MEMORY="384m",
               PYSPARK_PYTHON=sys.executable)
    port = free_port()
    procs = []

    def start(args, log):
        f = open(log, "w")
        procs.append((subprocess.Popen([str(spark_class), *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                                       cwd=d, start_new_session=True), f))

    master_log, worker_log = d / "master.log", d / "worker.log"
    start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
           "--webui-port", str(free_port())], master_log)
    try:
        _wait_for(lambda: port_open(port), "the master listening", 120, master_log)
        start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2", "--memory", "2g",
               "--webui-port", str(free_port()), "--work-dir", str(d / "work"), f"spark://127.0.0.1:{port}"],
              worker_log)
        _wait_for(lambda: "Registering worker" in master_log.read_text(), "the worker registering", 120,
                  master_log)
        yield {"master": f"spark://127.0.0.1:{port}", "work": d / "work", "env": env}
    finally:
        for proc, f in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            f.close()


def _submit(standalone, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipeline.cli", "submit", "--target", "spark-submit",
           "--master", standalone["master"], "--python", sys.executable, "--driver-python", sys.executable,
           "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.memory=1g", *args]
    return subprocess.run(cmd, cwd=ROOT, env=standalone["env"], capture_output=True, text=True, timeout=900)


def test_spark_submit_runs_extract_on_a_standalone_cluster(standalone, s3_server, tmp_path):
    from pipeline.sample import write_sample_warc
    bucket = s3_server.make_bucket("cluster-run")
    warc = f"{bucket}/crawl/sample.warc.gz"
    summary = write_sample_warc(warc)
    root = f"{bucket}/runs/standalone"
    sets = ["--set", f"storage.s3_endpoint={s3_server.endpoint}", "--set", "run.audit=none"]
    proc = _submit(standalone, "--input", warc, "--output", root, "--stages", "extract",
                   "--staging-dir", str(tmp_path / "staging"), *sets)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "spark-submit --master spark://127.0.0.1:" in proc.stderr
    cfg = load_config(None, [f"storage.s3_endpoint={s3_server.endpoint}", "run.audit=none"])
    store = Storage(cfg.storage)
    man = read_manifest(store, f"{root}/extract")
    assert man is not None and man["config_hash"] == stage_hash(cfg, registry()["extract"])
    assert man["input"]["uri"] == warc and man["rows"] > 0
    assert read_dataset(store, f"{root}/extract").num_rows == man["rows"]
    assert man["counts"]["in"] >= man["rows"] and summary["captures"] > 0
    # the executors ran on the worker, with the shipped code unpacked beside them
    apps = list(standalone["work"].glob("app-*"))
    assert apps, "no application ran on the standalone worker"
    assert list(standalone["work"].glob("app-*/*/mdr-src/pipeline/stage.py")), "the code archive was not unpacked"
    shipped = (tmp_path / "staging" / "mdr-config.yaml").read_text()
    assert "master: spark://127.0.0.1:" in shipped

    # re-submitting finds the stage committed and submits nothing
    again = _submit(standalone, "--input", warc, "--output", root, "--stages", "extract",
                    "--staging-dir", str(tmp_path / "staging2"), *sets)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "extract: committed at" in again.stderr and "spark-submit --master" not in again.stderr
    assert len(list(standalone["work"].glob("app-*"))) == len(apps)


def test_spark_submit_failure_stops_with_the_stage_error(standalone, s3_server, tmp_path):
    bucket = s3_server.make_bucket("cluster-fail")
    # it exists, so the checks before submitting pass; it is not a WARC, so the stage fails on the cluster
    Storage(load_config(None, [f"storage.s3_endpoint={s3_server.endpoint}"]).storage).write_bytes(
        f"{bucket}/crawl/missing.warc.gz", b"<html>not a WARC file</html>" * 10)
    proc = _submit(standalone, "--input", f"{bucket}/crawl/missing.warc.gz", "--output", f"{bucket}/runs/f",
                   "--stages", "extract,filter", "--staging-dir", str(tmp_path / "staging"),
                   "--set", f"storage.s3_endpoint={s3_server.endpoint}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "stage extract failed" in proc.stderr and "missing.warc.gz" in proc.stderr
    assert "filter: submitting" not in proc.stderr
