"""pipeline.core.task_gc: a task process's collector settings, and that Spark's workers run file tasks with them."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import gc, json
from pipeline.core import task_gc
out = {"before": list(gc.get_threshold()), "frozen": [gc.get_freeze_count()]}
for i in range(3):
    out.setdefault("returned", []).append(task_gc.tune())
    globals()[f"made_by_task_{i}"] = [[] for _ in range(1000)]  # what a task loads lazily (a model, a module)
    out["frozen"].append(gc.get_freeze_count())
out["after"] = list(gc.get_threshold())
print(json.dumps(out))
"""


def _probe(env_gc: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MDR_TASK_GC"}
    if env_gc is not None:
        env["MDR_TASK_GC"] = env_gc
    r = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_tune_raises_the_threshold_and_freezes_what_the_first_two_tasks_leave_alive():
    from pipeline.core.task_gc import GEN0
    out = _probe(None)
    assert out["before"][0] == 700
    assert out["after"] == [GEN0] + out["before"][1:]  # only the first generation's threshold changes
    assert out["returned"] == [True, True, True]
    f0, f1, f2, f3 = out["frozen"]
    assert f1 > f0 and f2 >= f1 + 1000  # the first task's lazily made objects are frozen at the second task's start
    assert f3 == f2  # later tasks freeze nothing more (the third task's objects stay collectable)


def test_default_keeps_cpythons_settings():
    out = _probe("default")
    assert out["returned"] == [False, False, False]
    assert out["after"] == out["before"]
    assert out["frozen"] == [out["frozen"][0]] * 4


def test_spark_workers_run_file_tasks_with_it(spark, tmp_path, cfg_factory):
    from pipeline.core.dataset import InputDataset
    from pipeline.core.stage import StageContext, run_file_tasks
    from pipeline.core.storage import Storage
    from pipeline.core.task_gc import GEN0

    def record_gc(uri: str, sink) -> None:  # nested: pickled by value into the workers
        import gc
        sink.stats["tasks"] = 1
        sink.stats["gen0_threshold"] = gc.get_threshold()[0]
        sink.stats["frozen"] = int(gc.get_freeze_count() > 0)
        sink.keep({"id": uri.rsplit("/", 1)[-1]})

    files = []
    for i in range(4):
        p = tmp_path / f"in-{i}.txt"
        p.write_text("x")
        files.append(str(p))
    ctx = StageContext(cfg_factory(), Storage(), "gcprobe", InputDataset(str(tmp_path), files, None, "fp", True),
                       str(tmp_path / "out"), "cfg", _spark=spark, shuffle_partitions=2)
    res = run_file_tasks(ctx, record_gc, pa.schema([("id", pa.string())]))
    assert res.counts.kept == 4 and res.stats["tasks"] == 4
    assert res.stats["gen0_threshold"] == 4 * GEN0  # summed over the tasks: every task ran with the threshold
    assert res.stats["frozen"] == 4
    assert gc.get_threshold()[0] != GEN0 or os.environ.get("MDR_TASK_GC") == "default"  # not the driver's
