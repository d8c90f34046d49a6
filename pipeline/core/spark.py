"""Spark session factory: local[*] by default, any master URL otherwise."""
from __future__ import annotations

import os
import re
import sys

from pipeline.core.config import Config
from pipeline.core.dataset import ROW_GROUP_BYTES

_LOCAL = re.compile(r"^local\[(\*|\d+)\]$")


def master_url(master: str) -> str:
    """local[N] gets task retries (local[N,4]), as a cluster has: a killed worker is retried, not fatal."""
    m = _LOCAL.match(master)
    return f"local[{m.group(1)},4]" if m else master


def spark_env(master: str) -> None:
    """The Python Spark runs (this interpreter unless set) and, in local mode, the loopback address. A variable set
    to an empty string counts as unset: Spark would try to start "" and fail every task with "No such file"."""
    defaults = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    if master.startswith("local"):
        defaults["SPARK_LOCAL_IP"] = "127.0.0.1"
    for key, value in defaults.items():
        if not os.environ.get(key, "").strip():
            os.environ[key] = value


def get_spark(cfg: Config, master: str | None = None):
    """Build (or reuse) the SparkSession; environment set here at call time, never at import."""
    master = master_url(master or cfg.spark.master)
    spark_env(master)
    from pipeline.core.engine_logs import engine_stderr_filtered, quiet_python_warnings, spark_java_options
    quiet_python_warnings()
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName(cfg.spark.app_name)
               .config("spark.driver.memory", cfg.spark.driver_memory)
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.python.worker.reuse", "true")
               .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
               # Arrow batches into a Python worker of a few MB whatever the rows' size (and the partition's)
               .config("spark.sql.execution.arrow.maxBytesPerBatch", str(ROW_GROUP_BYTES))
               .config("spark.sql.session.timeZone", "UTC"))
    conf = dict(cfg.spark.conf)
    if master.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
        opts = []
        if SparkSession.getActiveSession() is None:
            opts.append(spark_java_options())  # the JVM's log4j config is read once, when it starts
            if cfg.spark.quick_jit:
                opts.append("-XX:TieredStopAtLevel=1")
            if cfg.spark.class_cache:
                from pipeline.core.jvm_class_cache import java_options
                opts.append(java_options())
        key = "spark.driver.extraJavaOptions"
        opts = " ".join(o for o in opts if o)
        if opts:
            conf[key] = f"{opts} {conf[key]}" if conf.get(key) else opts
    for k, v in conf.items():
        builder = builder.config(k, v)
    with engine_stderr_filtered():  # the JVM (when this starts it) keeps the filtered stderr for its lifetime
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def default_parallelism(spark) -> int:
    return max(1, spark.sparkContext.defaultParallelism)


def shuffle_partitions(shuffle_bytes: int | None, target_bytes: int, configured: int, parallelism: int) -> int:
    """Partitions of a stage's shuffles: the bytes it is expected to shuffle over ``run.shuffle_partition_bytes``,
    at least the configured ``spark.shuffle_partitions`` and the cluster's default parallelism (every core busy).

    Set per stage rather than left to adaptive execution alone: AQE only coalesces small shuffle partitions (to
    ``spark.sql.adaptive.advisoryPartitionSizeInBytes``), it never splits a large one, so a fixed count of 16 gives
    16 tasks of 1/16 of a terabyte each; starting from enough partitions, AQE may still merge the small ones.
    The size of the files written is bounded by the rotating part writer (``pipeline.core.dataset``), not by this."""
    by_size = -(-(shuffle_bytes or 0) // max(1, target_bytes))
    return max(1, configured, parallelism, by_size)


def set_shuffle_partitions(spark, cfg: Config, input_bytes: int | None, shuffle_factor: float = 1.0) -> int:
    """``spark.sql.shuffle.partitions`` for the stage about to run, from its input's bytes times the stage's
    ``StageSpec.shuffle_factor`` (shuffle bytes per input byte, measured); returns it.

    Sizing from the input alone kept the dedup stages at the floor of 16 partitions while their shuffles (band keys,
    window hashes, graph edges: several times the input's compressed bytes) grew with it, and with them each task's
    memory (bench/scaling.py, 6k -> 48k pages: 5.3x). AQE's advisory size is the same target, so a factor that
    over-estimates only costs partitions that AQE merges again; one that under-estimates lets partitions grow."""
    target = cfg.run.shuffle_partition_bytes
    n = shuffle_partitions(int((input_bytes or 0) * shuffle_factor), target, cfg.spark.shuffle_partitions,
                           default_parallelism(spark))
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    spark.conf.set("spark.sql.adaptive.advisoryPartitionSizeInBytes", str(target))
    return n
