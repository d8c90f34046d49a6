"""A class-data-sharing (CDS) archive for the local-mode driver JVM: Spark's start-up, made cheaper.

Starting a local SparkSession loads ~10,000 JVM classes, which takes several seconds of a short run. The JVM
(JDK 13+) can dump the classes an application loaded into an archive (``-XX:ArchiveClassesAtExit``) and map it
at the next start (``-XX:SharedArchiveFile``). The archive is made once per Spark version and Java runtime, by
a throwaway local session that runs a small DataFrame job, into a temporary file renamed into place when
complete; two processes making it at once each write their own file. A stale or unusable archive (another
classpath, another JVM) is ignored by the JVM (``-Xshare:auto``), never fatal. ``spark.class_cache=false``
turns it off.

    python -m pipeline.core.jvm_class_cache   # make (or show) the archive now, e.g. in a Docker build or CI setup
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mdr"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(java) if java else "java"


def archive_path() -> Path:
    """One archive per pyspark version and Java runtime (by the java binary's real path)."""
    import pyspark
    jvm = hashlib.sha256(_java().encode()).hexdigest()[:10]
    return cache_dir() / f"spark-{pyspark.__version__}-jvm{jvm}.jsa"


def java_options() -> str:
    """Driver JVM options that use the archive, making it first when it is missing; '' when it can't be had."""
    path = archive_path()
    if not path.exists() and not make_archive(path):
        return ""
    return f"-XX:SharedArchiveFile={path} {QUIET}"


def make_archive(path: Path) -> bool:
    """Run a throwaway local Spark that dumps its classes at exit; True when the archive is in place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"[spark] note: no class cache ({path.parent}: {e}); set spark.class_cache=false to skip", file=sys.stderr)
        return False
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    print(f"[spark] first local run with this Spark and Java: caching the JVM classes Spark loads at start-up in "
          f"{path} (once, ~15 s; spark.class_cache=false skips)", file=sys.stderr, flush=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1")
    try:
        r = subprocess.run([sys.executable, "-m", "pipeline.core.jvm_class_cache", "--dump", str(tmp)], env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode == 0 and tmp.exists() and tmp.stat().st_size > 0:
            os.replace(tmp, path)
            return True
        print(f"[spark] note: could not make the class cache (exit {r.returncode}): {r.stderr.strip()[-500:]}",
              file=sys.stderr)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"[spark] note: could not make the class cache: {e}", file=sys.stderr)
    finally:
        tmp.unlink(missing_ok=True)
    return False


def _dump(tmp: str) -> None:
    """The throwaway session: start, run a small job through the paths every stage uses, stop."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    spark = (SparkSession.builder.master("local[1]").appName("mdr-class-cache")
             .config("spark.driver.extraJavaOptions", f"-XX:ArchiveClassesAtExit={tmp} {QUIET}")
             .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.parallelize(range(4), 2).map(lambda x: x * 2).collect()
    df = spark.createDataFrame([(i % 3, f"t{i}") for i in range(20)], "k long, v string")
    df.groupBy("k").agg(F.count("v")).orderBy("k").collect()
    from pyspark import SparkContext
    proc = getattr(SparkContext._gateway, "proc", None)
    spark.stop()
    # the JVM writes the archive when it exits, which it does when its stdin (a pipe from here) closes: wait for it
    if proc is not None:
        SparkContext._gateway.shutdown()
        proc.stdin.close()
        proc.wait(timeout=240)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--dump"]:
        _dump(argv[1])
        return 0
    path = archive_path()
    if path.exists() or make_archive(path):
        print(f"{path} ({path.stat().st_size / 1e6:.0f} MB)")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
