"""Engine noise off the terminal unless ``--verbose``: a run shows mdr's own progress lines and real errors.

Spark's JVM logs through ``log4j2-quiet.properties`` (errors only, from its first line: no banner, no WARN
lines), Ray starts with its loggers at ERROR and without streaming its workers' logs to the driver (an
actor's failure still reaches mdr as the task's exception), Ray Data's console handler shows errors only,
and the Python warnings pyspark, pandas, pyarrow and Ray raise are ignored. The choice travels in the
environment (``MDR_VERBOSE``), set by the CLI at call time, so Spark's Python workers and Ray's see it too.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

VERBOSE_ENV = "MDR_VERBOSE"
LOG4J_QUIET = Path(__file__).with_name("log4j2-quiet.properties")
NOISY_MODULES = r"(pyspark|pandas|pyarrow|ray|py4j)(\..*)?"


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
    import ray.data  # noqa: F401 - its import sets up the "ray.data" loggers quieted here
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)
