"""Real clusters on this machine, for tests and benches: a Spark standalone cluster (a master and N worker JVMs,
each worker launching its own executor JVM) and a Ray cluster (a head node and N more nodes, each its own raylet),
all separate processes on 127.0.0.1, so a task, an executor, a worker or a node can be killed for real.

Every process they start gets ``PYTHONPATH`` = this checkout, so executors' Python workers and Ray's workers run
the code under test, whatever is installed in the interpreter.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.proctree import cmdline, descendants, task_kind
from tests.s3server import free_port, port_open

ROOT = Path(__file__).resolve().parent.parent


def _wait_for(pred, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not happen in {timeout:.0f}s" + (f"; log:\n{tail}" if tail else ""))


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def code_env(checkout: bool = True, **extra: str) -> dict[str, str]:
    """This process's environment, with this checkout first on PYTHONPATH (unless ``checkout`` is False) and the
    interpreter as PySpark's."""
    env = dict(os.environ)
    if checkout:
        path = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    env.update(PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1",
               # Ray on the loopback address only (otherwise it binds the machine's own IP, even for 127.0.0.1)
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env.update(extra)
    return env


class SparkStandalone:
    """``spark://`` on 127.0.0.1 from pyspark's own launcher (bin/spark-class): one master, ``workers`` workers of
    ``cores`` cores and ``memory`` each. ``kill_worker(i)`` SIGKILLs worker i with its executors;
    ``kill_executor(i)`` only the executor JVM(s) worker i launched (the worker starts a new one).
    ``checkout=False``: the processes do not get this checkout on PYTHONPATH (code shipped with the job)."""

    def __init__(self, workdir: Path, workers: int = 2, cores: int = 1, memory: str = "2g",
                 worker_timeout_s: int = 20, checkout: bool = True) -> None:
        import pyspark
        self.home = Path(pyspark.__file__).parent
        self.spark_class = self.home / "bin" / "spark-class"
        self.dir = Path(workdir)
        self.n_workers, self.cores, self.memory = workers, cores, memory
        # a lost worker is declared dead after this many seconds without a heartbeat (Spark's default: 60)
        self.env = code_env(checkout, SPARK_HOME=str(self.home), SPARK_DAEMON_MEMORY="384m",
                            SPARK_DAEMON_JAVA_OPTS=f"-Dspark.worker.timeout={worker_timeout_s}")
        self.port = 0
        self.master_proc: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = []
        self._logs: list = []

    @property
    def available(self) -> bool:
        return self.spark_class.exists()

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, args: list[str], log: Path) -> subprocess.Popen:
        f = open(log, "w")
        self._logs.append(f)
        return subprocess.Popen([str(self.spark_class), *args], stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                cwd=self.dir, start_new_session=True)

    def start(self) -> "SparkStandalone":
        if not self.available:
            raise RuntimeError(f"{self.spark_class} is absent: this pyspark has no bundled launcher scripts")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = self.dir / "master.log"
        self.master_proc = self._start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                                        str(self.port), "--webui-port", str(free_port())], log)
        try:
            _wait_for(lambda: port_open(self.port), "the Spark master listening", 120, log)
            for i in range(self.n_workers):
                self.workers.append(self._start_worker(i))
            _wait_for(lambda: log.read_text().count("Registering worker") >= self.n_workers,
                      f"{self.n_workers} Spark workers registering", 120, log)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_worker(self, i: int) -> subprocess.Popen:
        return self._start(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                            str(self.cores), "--memory", self.memory, "--webui-port", str(free_port()),
                            "--work-dir", str(self.work_dir(i)), self.master], self.dir / f"worker-{i}.log")

    def work_dir(self, i: int) -> Path:
        return self.dir / f"work-{i}"

    def executor_pids(self, i: int) -> list[int]:
        """The executor JVMs worker i runs now."""
        w = self.workers[i]
        if w is None or w.poll() is not None:
            return []
        return [p for p in descendants(w.pid) if task_kind(p) == "executor_jvm"]

    def kill_executor(self, i: int) -> list[int]:
        pids = self.executor_pids(i)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker i's whole process group: the worker JVM, its executors and their Python workers."""
        w = self.workers[i]
        if w is not None and w.poll() is None:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()
        self.workers[i] = None

    def stop(self) -> None:
        for w in self.workers:
            if w is not None:
                _stop_group(w)
        if self.master_proc is not None:
            _stop_group(self.master_proc)
        for f in self._logs:
            f.close()
        self._logs.clear()


@contextmanager
def running_standalone(workdir: Path, **kw):
    """A started ``SparkStandalone`` for a test fixture, stopped after; the test is skipped where this pyspark has
    no launcher scripts."""
    import pytest
    cluster = SparkStandalone(workdir, **kw)
    if not cluster.available:
        pytest.skip(f"{cluster.spark_class} is absent: this pyspark has no bundled launcher scripts")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class RayCluster:
    """A Ray cluster of ``nodes`` nodes on this machine (Ray's own ``cluster_utils.Cluster``: a head with the GCS,
    and one raylet per node, each a separate process tree), ``cpus`` CPUs each; ``address`` is what ``ray.init``
    and ``mdr --ray-address`` take. ``kill_node(i)`` kills node i (i >= 1) and its workers without warning."""

    def __init__(self, nodes: int = 2, cpus: float = 1, object_store_mb: int = 150) -> None:
        self.n_nodes, self.cpus, self.object_store = nodes, cpus, object_store_mb * 1024 * 1024
        self.cluster = None
        self.nodes: list = []

    @property
    def address(self) -> str:
        return self.cluster.address

    def start(self) -> "RayCluster":
        env = code_env(RAY_USAGE_STATS_ENABLED="0")
        keys = ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        saved = {k: os.environ.get(k) for k in keys}
        os.environ.update({k: env[k] for k in keys})
        try:  # the node processes (and so every Ray worker) inherit PYTHONPATH from this environment
            from ray.cluster_utils import Cluster
            self.cluster = Cluster(initialize_head=True, connect=False,
                                   head_node_args={"num_cpus": self.cpus, "include_dashboard": False,
                                                   "object_store_memory": self.object_store})
            self.nodes = [self.cluster.head_node]
            for _ in range(self.n_nodes - 1):
                self.nodes.append(self.cluster.add_node(num_cpus=self.cpus, object_store_memory=self.object_store))
            self.cluster.wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return self

    def worker_pids(self, i: int, name: str = "") -> list[int]:
        """The worker processes node i's raylet runs now whose title (``ray::<actor class>...``) contains ``name``."""
        from ray._private import ray_constants
        pids = [p.process.pid for p in self.nodes[i].all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, [])]
        return [c for p in pids for c in descendants(p) if cmdline(c).startswith("ray::") and name in cmdline(c)]

    def kill_node(self, i: int) -> None:
        if i == 0:
            raise ValueError("node 0 is the head: killing it ends the cluster")
        self.cluster.remove_node(self.nodes[i], allow_graceful=False)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None
