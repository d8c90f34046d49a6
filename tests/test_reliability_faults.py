"""Killed processes mid-stage: a Spark Python worker SIGKILLed while it runs a task, a Ray actor SIGKILLed while
it scores. Spark retries the task (local[N,4], as on a cluster), Ray restarts the actor and re-runs its unit; the
committed output is then row for row the output of a clean run of the same input: nothing lost, nothing twice,
in == kept + removed at every stage.

Real processes, found in /proc among this test's own descendants (tests/faults.py) and killed with SIGKILL.
"""
from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest

from tests import faults

SPARK_STAGES = ["extract", "filter", "dedup_fuzzy", "dedup_exact"]


def _rows(store, uri: str) -> list[dict]:
    from pipeline.core.dataset import read_dataset
    t = read_dataset(store, uri)
    return sorted(t.to_pylist(), key=lambda r: r["id"])


def _rejects(store, uri: str) -> list[tuple]:
    from pipeline.core.dataset import read_rejects
    t = read_rejects(store, uri)
    return sorted(zip(t.column("id").to_pylist(), t.column("reason").to_pylist(), t.column("details").to_pylist()))


def _same_as_clean(store, clean_root: str, faulted_root: str, stages: list[str]) -> None:
    """Stage by stage: the same counts, the same kept rows (every column), the same removals with their details,
    no id twice, every stage reading exactly what the previous one kept, and no file the manifest does not list."""
    from pipeline.core.dataset import read_manifest
    prev = None
    for s in stages:
        a, b = read_manifest(store, f"{clean_root}/{s}"), read_manifest(store, f"{faulted_root}/{s}")
        assert b is not None, f"{s}: not committed after the faults"
        cb = b["counts"]
        assert cb == a["counts"], (s, cb, a["counts"])
        assert cb["in"] == cb["kept"] + sum(cb["removed"].values())
        if prev is not None:
            assert cb["in"] == prev, s
        prev = cb["kept"]
        rows = _rows(store, f"{faulted_root}/{s}")
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == b["rows"] == cb["kept"], s
        assert rows == _rows(store, f"{clean_root}/{s}"), s
        rej = _rejects(store, f"{faulted_root}/{s}")
        assert rej == _rejects(store, f"{clean_root}/{s}"), s
        assert len(rej) == sum(cb["removed"].values())
        on_disk = {os.path.relpath(os.path.join(d, f), f"{faulted_root}/{s}")
                   for d, _, fs in os.walk(f"{faulted_root}/{s}") for f in fs}
        listed = {p["path"] for p in b["parts"] + b["rejects"]} | {"_manifest.json", "_lease.json"}
        assert on_disk == listed, (s, on_disk ^ listed)  # a killed attempt's files were collected


@pytest.fixture(scope="module")
def warcs(tmp_path_factory):
    """Four generated WARCs (the sample generator, seeds 0-3: seven languages, duplicates, spam, broken records)."""
    from pipeline.sample.generate import write_sample_blocklist, write_sample_warc
    d = tmp_path_factory.mktemp("faults")
    (d / "in").mkdir()
    summary = None
    for seed in range(4):
        summary = write_sample_warc(str(d / "in" / f"crawl-{seed}.warc.gz"), seed=seed)
    write_sample_blocklist(str(d / "blocklist"), summary)
    return d


def test_spark_worker_killed_mid_task_is_retried_without_loss_or_duplicates(spark, warcs):
    from pipeline.core.config import load_config
    from pipeline.core.dataset import read_manifest
    from pipeline.run.runner import run_pipeline
    from pipeline.core.storage import Storage
    cfg = load_config("sample", ["spark.master=local[2]", f"extract.url_filter.blocklist_uri={warcs}/blocklist",
                                 f"run.stages=[{','.join(SPARK_STAGES)}]", "run.audit=full"])
    store = Storage(cfg.storage)
    clean, faulted = str(warcs / "clean"), str(warcs / "faulted")
    run_pipeline(cfg, input_uri=str(warcs / "in"), output_root=clean)

    killer = faults.Killer(phase=faults.stage_in_progress(faulted, SPARK_STAGES),
                           candidates=lambda: faults.spark_workers(os.getpid()))
    t0 = time.time()
    with killer:
        run_pipeline(cfg, input_uri=str(warcs / "in"), output_root=faulted)
    print(f"faulted run {time.time() - t0:.0f}s; kills (stage, pid, s): {killer.kills}")

    killed_stages = {k[0] for k in killer.kills}
    assert "extract" in killed_stages, killer.kills  # its tasks run for seconds: a kill always lands in one
    man = read_manifest(store, f"{faulted}/extract")
    retried = [p["path"] for p in man["parts"] + man["rejects"] if "-a0-" not in p["path"]]
    assert retried, "the killed extract task's committed files come from a later attempt"
    assert man["failed_inputs"] == []
    _same_as_clean(store, clean, faulted, SPARK_STAGES)


def _texts(n: int, seed: int) -> list[str]:
    """Documents on both sides of the quality threshold: English prose (the sample generator's sentences) and
    navigation junk, deterministic per seed."""
    import random
    import re as _re

    from pipeline.sample.text import EN_SENTENCES, EN_TIPS
    rng = random.Random(seed)
    bank = [_re.sub(r"\{\w+\}", "things", x) for x in EN_SENTENCES + EN_TIPS]
    junk = ["Home", "Login", "Cart", "Share", "Menu", "Next", "Prev", "Sign up", "Cookies", "Top"]
    return [" | ".join(rng.choice(junk) for _ in range(30)) if i % 3 == 2
            else " ".join(rng.choice(bank) for _ in range(6 + i % 9)) for i in range(n)]


def _commit_input(store, root: str, parts: int, per_part: int) -> int:
    from pipeline.core.dataset import Counts, PartWriter, build_manifest, commit, part_path
    schema = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string())])
    infos, n = [], 0
    for p in range(parts):
        texts = _texts(per_part, p)
        ids = [f"p{p:02d}-{i:05d}" for i in range(per_part)]
        w = PartWriter(store, root, part_path(p, "t"), schema)
        w.write(pa.table({"id": ids, "url": [f"https://q.example/{x}" for x in ids], "text": texts}, schema=schema))
        infos.append(w.close())
        n += per_part
    commit(store, root, build_manifest(stage="dedup_exact", config_hash="x", input_desc={}, parts=infos, rejects=[],
                                       schema=schema, counts=Counts(n, n), failed_inputs=[], started=time.time()))
    return n


def test_ray_actor_killed_mid_quality_stage_recovers_complete_and_unique(tmp_path):
    import ray

    from pipeline.core.config import load_config
    from pipeline.core.dataset import read_manifest
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    if ray.is_initialized():
        ray.shutdown()
    store = Storage()
    n = _commit_input(store, str(tmp_path / "in"), parts=8, per_part=1000)
    # batch_size=1: each unit scores 1,000 documents one call at a time, so a unit takes long enough to be
    # killed in the middle of it; fractional CPUs so 2 actors and the driver share 2 cores
    cfg = load_config(None, ["ray.actors=2", "ray.cpus_per_actor=0.5", "ray.batch_size=1", "run.audit=full"])
    clean, faulted = str(tmp_path / "clean"), str(tmp_path / "faulted")
    man_clean = run_stage(cfg, "quality", str(tmp_path / "in"), clean)
    assert man_clean["counts"]["in"] == n

    def phase():
        # scoring has started (an actor opened a part file) and the stage is not committed yet
        if os.path.exists(os.path.join(faulted, "_manifest.json")) or not os.path.isdir(faulted):
            return None
        return "quality" if any(f.startswith("part-") for f in os.listdir(faulted)) else None

    idle = set(faults.ray_actors(os.getpid()))  # the clean run's actors, if Ray keeps them
    killer = faults.Killer(phase=phase, candidates=lambda: faults.ray_actors(os.getpid()))
    with killer:
        man = run_stage(cfg, "quality", str(tmp_path / "in"), faulted)
    print(f"kills: {killer.kills}; actor processes seen (pid: first seen, s): {killer.seen}; "
          f"stats: actor_processes={man['stats']['actor_processes']}")
    assert len(killer.kills) == 1, killer.kills
    killed = killer.kills[0][1]
    started = set(killer.seen) - idle
    assert killed in started and len(started) >= cfg.ray.actors + 1, killer.seen  # the killed actor was restarted
    assert man["counts"]["in"] == n == man["counts"]["kept"] + sum(man["counts"]["removed"].values())
    assert man["stats"]["work_units"] == 8
    assert read_manifest(store, faulted)["counts"] == man_clean["counts"]
    rows_a, rows_b = _rows(store, clean), _rows(store, faulted)
    assert [r["id"] for r in rows_b] == sorted({r["id"] for r in rows_b})  # unique
    assert rows_b == rows_a
    assert _rejects(store, faulted) == _rejects(store, clean)
    assert len(rows_b) + len(_rejects(store, faulted)) == n
    on_disk = {os.path.relpath(os.path.join(d, f), faulted) for d, _, fs in os.walk(faulted) for f in fs}
    assert on_disk == {p["path"] for p in man["parts"] + man["rejects"]} | {"_manifest.json", "_lease.json"}
