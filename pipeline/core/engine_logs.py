"""Engine noise off the terminal unless ``--verbose``: a run shows mdr's own progress lines and real errors.

Spark's JVM logs through ``log4j2-quiet.properties`` (errors only, from its first line: no banner, no WARN
lines), Ray starts with its loggers at ERROR and without streaming its workers' logs to the driver (an
actor's failure still reaches mdr as the task's exception), Ray Data's console handler shows errors only,
and the Python warnings pyspark, pandas, pyarrow and Ray raise are ignored. The choice travels in the
environment (``MDR_VERBOSE``), set by the CLI at call time, so Spark's Python workers and Ray's see it too.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

VERBOSE_ENV = "MDR_VERBOSE"
LOG4J_QUIET = Path(__file__).with_name("log4j2-quiet.properties")
NOISY_MODULES = r"(pyspark|pandas|pyarrow|ray|py4j)(\..*)?"
# lines engines write straight to stderr, past any logger: the JVM's note on Spark 4's incubating vector module,
# and the C++ log lines (info, warning, error; not fatal) of the Ray core worker inside the driver, e.g. a notice
# per actor whose constructor arguments sit in the object store
NOISE = re.compile(rb"WARNING: Using incubator modules|\[\d{4}-\d\d-\d\d [\d:,]+ [IWE] \d+ \d+\] \w+\.cc:\d+:")
DRAIN = b"\0mdr: end of engine output\n"


def set_verbose(on: bool) -> None:
    """The CLI's ``--verbose``: engines print their own logs (on) or errors only (off, the default)."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def spark_java_options() -> str:
    """JVM option of a local Spark driver: log4j reads the quiet config (empty when verbose)."""
    return "" if verbose() else f"-Dlog4j2.configurationFile={LOG4J_QUIET.as_uri()}"


def quiet_python_warnings() -> None:
    """Ignore the engines' Python warnings in this process (the driver, a Spark Python worker, a Ray actor)."""
    if not verbose():
        warnings.filterwarnings("ignore", module=NOISY_MODULES)


def ray_init_options() -> dict:
    """``ray.init`` arguments: Ray's loggers and its workers' output follow ``--verbose``."""
    if verbose():
        return {"logging_level": "WARNING", "log_to_driver": True}
    return {"logging_level": "ERROR", "log_to_driver": False}


def quiet_ray_data() -> None:
    """Ray Data's console handler (its 'Progress bars disabled' notice, execution plans) at ERROR; its log file
    in the Ray session folder keeps everything."""
    if verbose():
        return
    importlib.import_module("ray.data")  # its import sets up the "ray.data" loggers quieted here
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)


@contextmanager
def engine_stderr_filtered():
    """While the block runs, this process's stderr (fd 2) is a pipe that drops the engines' NOISE lines and passes
    every other line on, in order: the driver's own Ray core worker writes there. Processes started inside the
    block (Spark's JVM and its Python workers, Ray's local daemons) keep the pipe, filtered, for their lifetime."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    real = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    drained = threading.Event()
    threading.Thread(target=_forward, args=(read_end, real, drained), daemon=True, name="mdr-engine-stderr").start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.write(2, DRAIN)  # every line written before this one reaches the terminal before mdr writes there again
        drained.wait(5)
        os.dup2(real, 2)  # the forwarder keeps its copy of ``real`` while the engines' processes still write


def _forward(read_end: int, out: int, drained: threading.Event) -> None:
    pending = b""
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            _write_all(out, b"".join(line + b"\n" for line in lines if line != DRAIN[:-1] and not NOISE.match(line)))
            if DRAIN[:-1] in lines:
                drained.set()
        if not NOISE.match(pending):
            _write_all(out, pending)
    except OSError:  # our stderr is gone (the process is ending): nothing left to show
        pass
    finally:
        drained.set()
        os.close(read_end)
        os.close(out)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
