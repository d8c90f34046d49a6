"""The garbage collector's settings in a process that runs per-document tasks (a Spark Python worker).

Per-document work allocates and frees small objects by the million (trafilatura's tree walks, the filters' word
lists). CPython runs a first-generation collection after every 700 net container allocations; with a worker's
imports alive (pyspark, pyarrow, lxml, the models), the older generations' collections also walk hundreds of
thousands of objects that will never be garbage. This work leaves almost no cycles: measured, 7 unreachable objects
per 181-page WARC file through the whole extract path (368 on the first file, the imports' own), so collecting
rarely costs no memory. ``tune()``, called as each task starts:
- on the first task, the first generation's threshold goes from 700 to ``GEN0``; the older ones keep their
  defaults (they count first-generation collections, so they also run ~70x less often);
- on the first two tasks, a collection then ``gc.freeze()``: every object alive then (modules, compiled patterns,
  models; the second time, what the first task loaded lazily: the extractor, the language model) moves to a
  permanent generation that no collection walks again; nothing unreachable is frozen. Later tasks change nothing.
Spark reuses a Python worker for later tasks and stages (``spark.python.worker.reuse``): in ``mdr run``, the dedup
stages' Arrow functions in the same worker keep the higher threshold (memory stays bounded: a collection still
runs every 50,000 net allocations).

Measured on the extract path (``pipeline.core.stage._run_one`` over the news-articles-181 copies, one process,
the settings alternated file by file, 12 files each): 11.62 ms a page with the defaults, 11.40 at 10,000,
11.34 at 100,000 with freeze (-2.4%); peak RSS unchanged (207 MB). Set ``MDR_TASK_GC=default`` to keep
CPython's defaults (to compare, or where a task's own code makes cycles in bulk); it is read in the worker, so on a
cluster it goes through ``spark.executorEnv.MDR_TASK_GC`` (``--set spark.conf.spark.executorEnv.MDR_TASK_GC=default``).
"""
from __future__ import annotations

import gc
import os

GEN0 = 50_000
_tasks = 0


def tune() -> bool:
    """Once per task, before it runs (see above); False when ``MDR_TASK_GC=default`` keeps CPython's settings."""
    global _tasks
    if os.environ.get("MDR_TASK_GC", "").strip().lower() == "default":
        return False
    _tasks += 1
    if _tasks == 1:
        gc.set_threshold(GEN0, *gc.get_threshold()[1:])
    if _tasks <= 2:
        gc.collect()  # nothing unreachable is frozen
        gc.freeze()
    return True
