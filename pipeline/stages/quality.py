"""quality: score every document with a classifier on a Ray actor pool and keep quality_score >= threshold.

A Ray Data job over work units (an input part, or a row slice of one when parts are fewer than twice
the actors): a fixed pool of actors, each loading the model once, streams its unit's rows through
``Storage`` (the row groups of its slice, ``ray.batch_size`` rows at a time), scores them and streams kept
rows into part files and removed rows (``low_quality``) into rejects files, rotated at ``run.target_part_bytes``.
Reading and writing inside the actors keeps the
text out of the object store and the process count at the pool size (which is what lets 2 actors
beat one process on 2 cores). Every file name carries a random attempt token, so a retried unit never
overwrites another's file; the driver lists exactly the files the finished units reported and the
runner commits them. Output is the input order with ``quality_score`` and ``quality_label`` added.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.config import Config
from pipeline.core.dataset import (REJECT_SCHEMA, Counts, PartInfo, RotatingPartWriter, iter_part, open_input,
                                   part_rows, reject_row, run_prefix)
from pipeline.core.stage import StageContext, StageFailed, StageResult, StageSpec
from pipeline.core.storage import Storage
from udfs.quality import ModelSpec, check_model, load_classifier

SCORE, LABEL = "quality_score", "quality_label"
# A killed or crashed actor is restarted (it reloads the model) and the unit it was scoring runs again on it:
# Ray Data's actor pools default to max_restarts=-1 and max_task_retries=-1 (tests/test_reliability_faults.py
# kills one mid-stage). A re-run unit writes new files (a new attempt token); only the files of the reports that
# came back are committed, so a retried unit is never counted twice.
REASON = "low_quality"
PROGRESS_EVERY_S = 5.0
EMPTY_SCHEMA = pa.schema([("id", pa.string()), ("url", pa.string()), ("text", pa.string()),
                          (SCORE, pa.float64()), (LABEL, pa.string())])


def resolve_input(store: Storage, cfg: Config, uri: str):
    return open_input(store, uri)


def model_spec(cfg: Config) -> ModelSpec:
    q = cfg.quality
    return ModelSpec(backend=q.backend, model_uri=q.model_uri, positive_label=q.positive_label,
                     lowercase=q.lowercase, embedding_model=q.embedding_model)


# --------------------------------------------------------------------------- Ray side

def plan_units(parts: list[str], actors: int) -> list[dict]:
    """Work units: one per input part; parts are cut into row slices when there are too few to keep the pool busy."""
    slices = 1 if len(parts) >= 2 * actors else -(-2 * actors // len(parts))
    return [{"task": i, "uri": u, "slice": j, "slices": slices} for i, u in enumerate(parts) for j in range(slices)]


class ScoreParts:
    """An actor of the scoring pool: loads the classifier once, then for each work unit reads its rows through
    ``Storage``, scores them ``batch_size`` at a time, and streams kept rows and rejects into part files."""

    def __init__(self, spec: ModelSpec, store: Storage, root: str, threshold: float, batch_size: int, audit: str,
                 rate: float, target_bytes: int, input_root: str | None = None) -> None:
        t0 = time.perf_counter()
        self.clf = load_classifier(spec, store)
        self.load_seconds = time.perf_counter() - t0
        self.ready_at = time.time()  # wall clock, so the driver can tell pool start-up from scoring
        self.store, self.root, self.threshold, self.batch_size = store, root, threshold, batch_size
        self.audit, self.rate, self.input_root, self.target_bytes = audit, rate, input_root, target_bytes

    def __call__(self, units: pa.Table) -> pa.Table:
        infos = [self.unit(u) for u in units.to_pylist()]
        return pa.table({"info": [json.dumps(i) for i, _ in infos], "schema": [s for _, s in infos]})

    def unit(self, u: dict) -> tuple[dict, bytes]:
        t0, c0, started_at = time.perf_counter(), time.process_time(), time.time()
        rows = None
        if u["slices"] > 1:
            n = part_rows(self.store, u["uri"])
            rows = (u["slice"] * n // u["slices"], (u["slice"] + 1) * n // u["slices"])
        # ordered by input position, unique per attempt, with the stage run's id (pipeline.core.output_lease)
        token = f"{run_prefix(u.get('run'))}s{u['slice']:03d}-{secrets.token_hex(4)}"
        n_in = kept = removed = 0
        score_sum = 0.0
        schema = None
        for batch in iter_part(self.store, u["uri"], None, self.input_root, rows, batch_rows=self.batch_size):
            batch = batch.drop_columns([c for c in (SCORE, LABEL) if c in batch.column_names])
            if schema is None:
                schema = batch.schema.append(pa.field(SCORE, pa.float64())).append(pa.field(LABEL, pa.string()))
                writer = RotatingPartWriter(self.store, self.root, u["task"], token, schema, self.target_bytes)
                rwriter = RotatingPartWriter(self.store, self.root, u["task"], token, REJECT_SCHEMA,
                                             self.target_bytes, rejects=True)
            n_in += batch.num_rows
            if not batch.num_rows:
                continue
            scores, labels = self.clf.score(batch.column("text").to_pylist())
            score_sum += float(scores.sum())
            batch = batch.append_column(SCORE, pa.array(scores, pa.float64()))
            batch = batch.append_column(LABEL, pa.array(labels, pa.string()))
            mask = pa.array(scores >= self.threshold)
            keep = batch.filter(mask)
            writer.write(keep)
            kept += keep.num_rows
            drop = batch.filter(pc.invert(mask))
            if drop.num_rows:
                rwriter.write(pa.Table.from_pylist(self.reject_rows(drop), schema=REJECT_SCHEMA))
                removed += drop.num_rows
        info = {"task": u["task"], "slice": u["slice"], "in": n_in, "kept": kept, "removed": removed,
                "parts": [p.to_dict() for p in writer.close()], "rejects": [p.to_dict() for p in rwriter.close()],
                "score_sum": score_sum, "seconds": round(time.perf_counter() - t0, 3),
                "cpu_seconds": round(time.process_time() - c0, 3),
                "model_load_seconds": round(self.load_seconds, 3), "ready_at": self.ready_at, "pid": os.getpid(),
                "started_at": started_at, "ended_at": time.time()}
        return info, schema.serialize().to_pybytes()

    def reject_rows(self, drop: pa.Table) -> list[dict]:
        cols = {c: drop.column(c).to_pylist() for c in ("id", "url", "text", SCORE, LABEL)}
        return [reject_row(i, u, REASON, {SCORE: round(s, 6), LABEL: lab, "threshold": self.threshold}, t,
                           self.audit, self.rate)
                for i, u, t, s, lab in zip(cols["id"], cols["url"], cols["text"], cols[SCORE], cols[LABEL])]


# --------------------------------------------------------------------------- driver

def pool_timing(infos: list[dict], job_started: float) -> dict:
    """Start-up apart from scoring, from the actors' clocks: the pool is up when its last actor has its model;
    steady docs/s counts the documents scored after that (a unit straddling it pro rata) over the time left."""
    readies = sorted({i["ready_at"] for i in infos})
    first, full, end = readies[0], readies[-1], max(i["ended_at"] for i in infos)
    after = sum(i["in"] * max(0.0, i["ended_at"] - max(i["started_at"], full)) / max(1e-9, i["ended_at"] - i["started_at"])
                for i in infos)
    steady = end - full
    return {"pool_start_seconds": round(max(0.0, full - job_started), 3),
            "first_actor_seconds": round(max(0.0, first - job_started), 3),
            "steady_seconds": round(steady, 3),
            "steady_docs_per_s": round(after / steady, 1) if steady > 0.05 and after else None,
            "after_first_actor_docs_per_s": round(sum(i["in"] for i in infos) / (end - first), 1) if end > first else None}


def _score(ctx: StageContext, spec: ModelSpec) -> tuple:
    """The Ray Data job: one actor pool scoring the work units; returns (Ray start-up seconds, start times, units,
    the reports of the finished units)."""
    import ray
    from pipeline.core.ray_session import init_ray
    cfg, store, rc = ctx.cfg, ctx.store, ctx.cfg.ray
    startup = init_ray(cfg)
    t0, job_started = time.perf_counter(), time.time()
    data_ctx = ray.data.DataContext.get_current()  # our own progress lines: Ray's progress logging costs the
    data_ctx.enable_progress_bars = False           # driver CPU that the actors need on a small machine
    data_ctx.print_on_execution_start = False
    units = [dict(u, run=ctx.run_id) for u in plan_units(ctx.input.parts, rc.actors)]
    ds = ray.data.from_items(units, override_num_blocks=len(units))
    ds = ds.map_batches(ScoreParts, batch_size=1, batch_format="pyarrow",
                        fn_constructor_kwargs={"spec": spec, "store": store, "root": ctx.output,
                                               "threshold": cfg.quality.threshold, "batch_size": rc.batch_size,
                                               "audit": cfg.run.audit, "rate": cfg.run.audit_sample_rate,
                                               "target_bytes": cfg.run.target_part_bytes,
                                               "input_root": ctx.input.uri},
                        # two units in flight per actor: the next one is queued when one ends, so an actor never waits on the driver
                        compute=ray.data.ActorPoolStrategy(size=rc.actors, max_tasks_in_flight_per_actor=2),
                        num_cpus=rc.cpus_per_actor, num_gpus=rc.gpus_per_actor or None)
    total_docs = ctx.input.rows
    try:
        reports, done, last = [], 0, time.perf_counter()
        for r in ds.iter_rows():  # one row per finished work unit, as units finish
            info = json.loads(r["info"])
            reports.append((info, r["schema"]))
            done += info["in"]
            if time.perf_counter() - last >= PROGRESS_EVERY_S:
                last = time.perf_counter()
                of = f" of {total_docs:,}" if total_docs is not None else ""
                eta = (f", ETA {(total_docs - done) * (last - t0) / done:.0f}s"
                       if total_docs is not None and 0 < done < total_docs else "")
                print(f"[quality] {len(reports)}/{len(units)} work units, {done:,}{of} documents, "
                      f"{done / (last - t0):,.0f} docs/s, {last - t0:.0f}s{eta}", file=sys.stderr, flush=True)
    except Exception as e:  # a unit failed after its retries: say which stage and why, commit nothing
        cause = e
        while getattr(cause, "__cause__", None) is not None:
            cause = cause.__cause__
        raise StageFailed(f"stage quality: Ray job failed: {type(cause).__name__}: {str(cause)[:1000]}") from e
    return startup, t0, job_started, units, reports


def run(ctx: StageContext) -> StageResult:
    cfg, store = ctx.cfg, ctx.store
    spec, rc = model_spec(cfg), cfg.ray
    model_info = check_model(spec, store)  # a corrupt model fails here, before Ray starts or any data is read
    params = {"model": {"backend": spec.backend, "uri": spec.model_uri or "bundled demo (udfs/models/quality-demo.ftz)",
                        "positive_label": spec.positive_label, "lowercase": spec.lowercase, **model_info},
              "threshold": cfg.quality.threshold, "actors": rc.actors, "batch_size": rc.batch_size}
    if not ctx.input.parts:
        return StageResult([], [], EMPTY_SCHEMA, Counts(), params=params)

    from pipeline.core.engine_logs import engine_stderr_filtered
    with engine_stderr_filtered():  # the Ray core worker in this process logs to its stderr
        startup, t0, job_started, units, reports = _score(ctx, spec)
    seconds = time.perf_counter() - t0
    infos = sorted(reports, key=lambda x: (x[0]["task"], x[0]["slice"]))
    got = [(i["task"], i["slice"]) for i, _ in infos]
    if sorted(got) != sorted((u["task"], u["slice"]) for u in units):  # each unit exactly once, retried or not
        raise StageFailed(f"stage quality: {len(units)} work units but {len(infos)} reports came back "
                          f"({len(set(got))} distinct); not committed")
    counts, parts, rejects = Counts(), [], []
    schema = pa.ipc.read_schema(pa.py_buffer(infos[0][1]))
    score_sum = unit_seconds = unit_cpu = 0.0
    for info, _ in infos:
        counts.n_in += info["in"]
        counts.kept += info["kept"]
        if info["removed"]:
            counts.removed[REASON] = counts.removed.get(REASON, 0) + info["removed"]
        parts += [PartInfo(**p) for p in info["parts"]]
        rejects += [PartInfo(**p) for p in info["rejects"]]
        score_sum += info["score_sum"]
        unit_seconds += info["seconds"]
        unit_cpu += info["cpu_seconds"]
    rate = counts.n_in / seconds if seconds > 0 else 0.0
    timing = pool_timing([i for i, _ in infos], job_started)
    print(f"[quality] scored {counts.n_in:,} documents in {seconds:.1f}s ({rate:,.0f} docs/s, {rc.actors} actors; "
          f"Ray start-up {startup:.1f}s, actor pool up after {timing['pool_start_seconds']:.1f}s)", file=sys.stderr)
    stats = {"docs_per_s": round(rate, 1), "score_seconds": round(seconds, 3), "ray_startup_seconds": round(startup, 3),
             "work_units": len(units), "unit_seconds": round(unit_seconds, 3), "unit_cpu_seconds": round(unit_cpu, 3),
             "actor_processes": len({i.get("pid") for i, _ in infos}),  # more than ray.actors: some were restarted
             **timing,
             "model_load_seconds": max(i["model_load_seconds"] for i, _ in infos),
             "mean_quality_score": round(score_sum / counts.n_in, 6) if counts.n_in else None}
    return StageResult(parts, rejects, schema, counts, stats=stats, params=params)


SPEC = StageSpec("quality", ("quality",), resolve_input, run, logic_version=1, engine="ray")
