"""`mdr submit --target spark-submit` for real: a Spark standalone master and worker started here on 127.0.0.1,
the extract stage submitted with spark-submit (code shipped with --archives, config with --files), data on the
moto S3 server; then a re-submission that finds the stage committed and submits nothing."""
import subprocess
import sys

import pytest

from pipeline.core.config import load_config
from pipeline.core.dataset import read_dataset, read_manifest
from pipeline.core.storage import Storage
from pipeline.run.runner import registry, stage_hash
from tests.conftest import ROOT
from tests.clusters import running_standalone


@pytest.fixture(scope="module")
def standalone(s3_server, tmp_path_factory):
    """A Spark standalone cluster from pyspark's own bin/ (spark-class): one master, one 2-core worker."""
    with running_standalone(tmp_path_factory.mktemp("standalone"), workers=1, cores=2, memory="2g",
                            checkout=False) as cluster:
        yield {"master": cluster.master, "work": cluster.work_dir(0), "env": cluster.env}


def _submit(standalone, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipeline.cli", "submit", "--target", "spark-submit",
           "--master", standalone["master"], "--python", sys.executable, "--driver-python", sys.executable,
           "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.memory=1g", *args]
    return subprocess.run(cmd, cwd=ROOT, env=standalone["env"], capture_output=True, text=True, timeout=900)


def test_spark_submit_runs_extract_on_a_standalone_cluster(standalone, s3_server, tmp_path):
    from pipeline.sample.generate import write_sample_warc
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
    assert list(standalone["work"].glob("app-*/*/mdr-src/pipeline/core/stage.py")), "the code archive was not unpacked"
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
