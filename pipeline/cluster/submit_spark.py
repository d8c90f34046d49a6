"""`mdr submit --target spark-submit`: one spark-submit command line per Spark stage, on any master.

The code travels as an archive (``--archives mdr-src.zip#mdr-src``, unpacked next to each executor and
put on its PYTHONPATH) or is already in the image (``--package image``, for k8s:// masters); the
effective config travels with ``--files``. Dependencies come from the nodes, an image, or a packed
environment given with ``--archives env.tar.gz#env --python ./env/bin/python``. The quality stage is a
Ray job: its driver runs here and connects to the Ray cluster given by ``--ray-address``.
Commands are argument lists, never shell strings; credentials stay in the environment.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.cluster.plan import CONFIG_FILE, RunPlan, StagePlan, check_no_secrets, dump_yaml, log, redact
from pipeline.core.config import Config, ConfigError
from pipeline.core.stage import StageFailed

PACKAGES = ("pipeline", "udfs", "jobs")   # what the source archive holds
SRC_ALIAS = "mdr-src"
IMAGE_ROOT = "/opt/mdr"                   # where docker/spark.Dockerfile puts the project


def default_spark_submit() -> str:
    """$SPARK_HOME/bin/spark-submit, else the one bundled with pyspark, else spark-submit on PATH."""
    home = os.environ.get("SPARK_HOME")
    if home and Path(home, "bin", "spark-submit").exists():
        return str(Path(home, "bin", "spark-submit"))
    spec = importlib.util.find_spec("pyspark")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "spark-submit"
        if bundled.exists():
            return str(bundled)
    return shutil.which("spark-submit") or "spark-submit"


def job_file(stage: str) -> Path:
    spec = importlib.util.find_spec(f"jobs.{stage}")
    if spec is None or not spec.origin:
        raise ConfigError(f"no entry point jobs/{stage}.py in this build")
    return Path(spec.origin)


def _source_root() -> Path:
    return job_file("extract").resolve().parent.parent


@dataclass
class SparkSubmitTarget:
    """Builds and runs the spark-submit command of each Spark stage (and the Ray driver of quality)."""
    cfg: Config
    master: str
    deploy_mode: str = "client"
    package: str = "archive"               # archive: ship the code; image: it is in cluster.spark_image
    archives: list[str] = field(default_factory=list)
    python: str | None = None              # spark.pyspark.python on the executors
    driver_python: str | None = None       # spark.pyspark.driver.python (client mode)
    spark_submit: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    staging_dir: str | None = None
    ray_address: str | None = None
    run: Callable[[list[str], str], tuple[int, list[str]]] | None = None  # -> (exit code, last lines)

    def __post_init__(self) -> None:
        if self.deploy_mode not in ("client", "cluster"):
            raise ConfigError(f"--deploy-mode {self.deploy_mode!r}: client or cluster")
        if self.package not in ("archive", "image"):
            raise ConfigError(f"--package {self.package!r}: archive or image")
        if self.deploy_mode == "cluster" and self.master.startswith(("spark://", "local")):
            raise ConfigError(f"--deploy-mode cluster: Spark runs Python applications on {self.master} in client "
                              f"mode only; use --deploy-mode client (or YARN / Kubernetes for cluster mode)")
        self.spark_submit = self.spark_submit or default_spark_submit()

    # ------------------------------------------------------------------ files shipped alongside
    def staging(self, plan: RunPlan) -> Path:
        return Path(self.staging_dir or Path(tempfile.gettempdir()) / "mdr-submit" / plan.run_name)

    def config_path(self, plan: RunPlan) -> Path:
        return self.staging(plan) / CONFIG_FILE

    def src_path(self, plan: RunPlan) -> Path:
        return self.staging(plan) / f"{SRC_ALIAS}.zip"

    def prepare(self, plan: RunPlan) -> None:
        """Write the config and (for --package archive) the source archive the commands ship."""
        d = self.staging(plan)
        d.mkdir(parents=True, exist_ok=True)
        self.config_path(plan).write_text(plan.config_yaml)
        if self.package == "archive":
            root = _source_root()
            with zipfile.ZipFile(self.src_path(plan), "w", zipfile.ZIP_DEFLATED) as z:
                for pkg in PACKAGES:
                    for f in sorted((root / pkg).rglob("*")):
                        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                            z.write(f, f.relative_to(root).as_posix())

    # ------------------------------------------------------------------ commands
    def _config_arg(self, plan: RunPlan) -> str:
        # client mode: the driver runs here; cluster mode: --files puts it in the driver's working directory
        return str(self.config_path(plan)) if self.deploy_mode == "client" else CONFIG_FILE

    def spark_command(self, plan: RunPlan, stage: StagePlan) -> list[str]:
        c = self.cfg.cluster
        cmd = [self.spark_submit, "--master", self.master, "--deploy-mode", self.deploy_mode,
               "--name", f"{plan.run_name}-{stage.name.replace('_', '-')}"]
        archives = list(self.archives)
        confs: dict[str, str] = {}
        if self.package == "archive":
            archives.insert(0, f"{self.src_path(plan)}#{SRC_ALIAS}")
            confs["spark.executorEnv.PYTHONPATH"] = SRC_ALIAS
            if self.deploy_mode == "cluster":
                confs["spark.yarn.appMasterEnv.PYTHONPATH"] = SRC_ALIAS
            main = str(job_file(stage.name))
        else:
            main = f"local://{IMAGE_ROOT}/jobs/{stage.name}.py"
            if self.master.startswith("k8s://"):
                confs["spark.kubernetes.container.image"] = c.spark_image
                confs["spark.kubernetes.container.image.pullPolicy"] = c.image_pull_policy
                confs["spark.kubernetes.namespace"] = c.namespace
                confs["spark.kubernetes.authenticate.driver.serviceAccountName"] = c.spark_service_account
        if archives:
            cmd += ["--archives", ",".join(archives)]
        cmd += ["--files", str(self.config_path(plan))]
        if c.driver_memory:
            cmd += ["--driver-memory", c.driver_memory]
        if c.driver_cores and self.deploy_mode == "cluster":
            cmd += ["--driver-cores", str(c.driver_cores)]
        if c.executor_memory:
            cmd += ["--executor-memory", c.executor_memory]
        if c.executor_cores:
            cmd += ["--executor-cores", str(c.executor_cores)]
        if c.executor_instances:
            cmd += ["--num-executors", str(c.executor_instances)]
            if self.master.startswith("spark://") and c.executor_cores:
                cmd += ["--total-executor-cores", str(c.executor_instances * c.executor_cores)]
        if self.python:
            confs["spark.pyspark.python"] = self.python
        if self.driver_python and self.deploy_mode == "client":
            confs["spark.pyspark.driver.python"] = self.driver_python
        confs.update(self.cfg.spark.conf)   # settings read when the JVMs start must be given here
        confs.update(self.conf)
        if self.master.startswith("k8s://") and self.deploy_mode == "cluster" \
                and "spark.kubernetes.file.upload.path" not in confs:
            raise ConfigError("--master k8s://... --deploy-mode cluster: spark-submit uploads the local config file "
                              "(and code archive) for the driver pod to spark.kubernetes.file.upload.path; pass "
                              "--conf spark.kubernetes.file.upload.path=s3a://bucket/prefix (this machine's Spark "
                              "then needs hadoop-aws, as the mdr-spark image has), or use --deploy-mode client, "
                              "or --target k8s")
        for k, v in confs.items():
            cmd += ["--conf", f"{k}={v}"]
        cmd += [main, "--config", self._config_arg(plan), "--input", stage.input, "--output", stage.output]
        return cmd + (["--force"] if plan.force else [])

    def ray_command(self, plan: RunPlan, stage: StagePlan) -> list[str]:
        """The quality stage's driver, run here; its actors run on the Ray cluster at --ray-address."""
        cmd = [self.driver_python or sys.executable, str(job_file(stage.name)), "--config",
               str(self.config_path(plan)), "--input", stage.input, "--output", stage.output]
        if self.ray_address:
            cmd += ["--ray-address", self.ray_address]
        return cmd + (["--force"] if plan.force else [])

    def command(self, plan: RunPlan, stage: StagePlan) -> list[str]:
        return self.spark_command(plan, stage) if stage.engine == "spark" else self.ray_command(plan, stage)

    def describe(self, plan: RunPlan) -> str:
        doc = {"target": "spark-submit", "run": plan.run_name, "root": plan.root, "master": self.master,
               "deploy_mode": self.deploy_mode, "package": self.package,
               "config_file": str(self.config_path(plan)), "config_sha": plan.config_sha,
               "stages": []}
        if self.package == "archive":
            doc["source_archive"] = str(self.src_path(plan))
        for st in plan.stages:
            entry = {"stage": st.name, "engine": st.engine, "state": "committed" if st.committed else "submit",
                     "config_hash": st.config_hash, "input": st.input, "output": st.output}
            if not st.committed:
                cmd = self.command(plan, st)
                entry["command"] = cmd
                entry["shell"] = shlex.join(cmd)
            doc["stages"].append(entry)
        text = ("# mdr submit --target spark-submit --dry-run: nothing was submitted\n"
                + dump_yaml(doc))
        check_no_secrets(text, "the spark-submit plan")
        return text

    # ------------------------------------------------------------------ running
    def run_stage(self, plan: RunPlan, stage: StagePlan, is_committed: Callable[[], bool]) -> None:
        cmd = self.command(plan, stage)
        check_no_secrets(shlex.join(cmd), "the spark-submit command")
        log(f"{stage.name}: {shlex.join(cmd)}")
        rc, tail = (self.run or _run_streaming)(cmd, stage.name)
        if rc != 0:
            errors = [ln for ln in tail if ln.startswith("mdr: ")] or tail[-15:]
            raise StageFailed(f"stage {stage.name} failed ({Path(cmd[0]).name} exited with {rc}):\n"
                              + redact("\n".join(errors)))


def _run_streaming(cmd: list[str], stage: str) -> tuple[int, list[str]]:
    """Run a command, echoing its output (redacted) and keeping the last lines for the error message."""
    tail: collections.deque[str] = collections.deque(maxlen=200)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            print(redact(f"[{stage}] {line}"), file=sys.stderr, flush=True)
        rc = proc.wait()
    return rc, list(tail)
