"""What a stage is, and the engine for stages that map one input file to one output part.

A stage is a ``StageSpec`` in the registry (``pipeline.stages``): it gets a ``StageContext`` and returns a
``StageResult``; the runner (``pipeline.run.runner``) decides whether it must run, checks conservation and
commits the manifest. Per-file stages use
``run_file_tasks``: one Spark task per input file, each streaming its rows into a part file through
a ``TaskSink`` that counts every kept and removed document. A finished task leaves a small marker
under ``_tasks/``, so a crashed stage restarts from the files it had not finished. A stage committed with
failed inputs keeps its markers, so ``--retry-failed`` re-runs only those files.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

from pipeline.core.config import Config
from pipeline.core.dataset import (REJECT_SCHEMA, TASKS_DIR, Counts, InputDataset, PartInfo, RotatingPartWriter,
                                   attempt_token, iter_part, reject_row)
from pipeline.core import task_gc
from pipeline.core.storage import Storage, StorageError, join


@dataclass
class StageContext:
    cfg: Config
    store: Storage
    stage: str
    input: InputDataset
    output: str
    config_hash: str
    force: bool = False
    _spark: Any = None
    master: str | None = None
    run_id: str = ""           # this stage run's id, in every part file name it writes (pipeline.core.output_lease)
    retry_of: dict | None = None  # --retry-failed: the committed manifest whose failed inputs are run again
    shuffle_factor: float = 1.0   # the stage's StageSpec.shuffle_factor: its shuffle partitions follow input bytes x this
    shuffle_partitions: int | None = None  # what the stage's shuffles were given (set on first use of the session)

    @property
    def spark(self):
        if self._spark is None:
            from pipeline.core.spark import get_spark
            self._spark = get_spark(self.cfg, self.master)
        if self.shuffle_partitions is None:  # the session may be shared by stages: each sets its own
            from pipeline.core.spark import set_shuffle_partitions
            self.shuffle_partitions = set_shuffle_partitions(self._spark, self.cfg, self.input.bytes,
                                                             self.shuffle_factor)
        from pipeline.core.dataset import RUN_PROPERTY
        self._spark.sparkContext.setLocalProperty(RUN_PROPERTY, self.run_id or None)  # read by attempt_token()
        return self._spark


@dataclass
class StageResult:
    parts: list[PartInfo]
    rejects: list[PartInfo]
    schema: pa.Schema
    counts: Counts
    failed_inputs: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)


class StageFailed(RuntimeError):
    """A stage could not finish; the message says which stage, why, and what to do."""


@dataclass(frozen=True)
class StageSpec:
    """A stage as the registry (``pipeline.stages``) lists it: what it hashes, reads and runs."""
    name: str
    sections: tuple[str, ...]                            # config sections whose hash decides a re-run
    resolve_input: Callable[[Storage, Config, str], InputDataset]
    run: Callable[[StageContext], StageResult]
    # bump when the stage's per-document logic changes (the same input and config would give other output):
    # a committed output of another logic version is re-run, never reused (it is part of ``stage_hash``)
    logic_version: int
    engine: str = "spark"                                # spark | ray: where its output's ids are checked
    # bytes the stage shuffles per byte of its input files, an upper bound measured on bench/scaling.py's pages:
    # its shuffle partitions are input bytes x this / run.shuffle_partition_bytes (pipeline.core.spark)
    shuffle_factor: float = 1.0


class TaskSink:
    """Collects one task's kept rows and rejects into part files of about ``target_bytes`` each (bounded memory)
    and counts them."""

    def __init__(self, store: Storage, root: str, task: int, schema: pa.Schema, audit: str, audit_rate: float,
                 target_bytes: int, flush_rows: int = 2000) -> None:
        self.store, self.root, self.task, self.schema = store, root, task, schema
        self.audit, self.audit_rate, self.flush_rows = audit, audit_rate, flush_rows
        self.token = attempt_token()
        self._writer = RotatingPartWriter(store, root, task, self.token, schema, target_bytes)
        self._rwriter = RotatingPartWriter(store, root, task, self.token, REJECT_SCHEMA, target_bytes, rejects=True)
        self.counts = Counts()
        self.stats: dict[str, Any] = {}
        self.error: str | None = None
        self._rows: list[dict] = []
        self._rejects: list[dict] = []

    def keep(self, row: dict) -> None:
        self.counts.keep()
        self._rows.append(row)
        if len(self._rows) >= self.flush_rows:
            self._flush()

    def drop(self, reason: str, doc_id: str, url: str | None = None, details: dict | None = None,
             text: str | None = None) -> None:
        self.counts.drop(reason)
        # ids, reasons and scores are always kept; the text per the audit setting
        self._rejects.append(reject_row(doc_id, url, reason, details, text, self.audit, self.audit_rate))
        if len(self._rejects) >= self.flush_rows:
            self._flush()

    def fail(self, error: str) -> None:
        self.error = error

    def discard_kept(self, reason: str) -> None:
        """Move every row kept so far to the rejects with ``reason`` (its input file failed part-way)."""
        self._flush()  # every kept row is now in the part files
        written = self._writer.close()
        self._writer = RotatingPartWriter(self.store, self.root, self.task, attempt_token(), self.schema,
                                          self._writer.target_bytes)
        details = {"error": (self.error or "")[:300]}
        for p in written:
            uri = join(self.root, p.path)
            for b in iter_part(self.store, uri, ["id", "url", "text"], batch_rows=self.flush_rows):
                self._rejects.extend(reject_row(r["id"], r["url"], reason, details, r["text"], self.audit,
                                                self.audit_rate) for r in b.to_pylist())
                self._flush()
            self.store.delete(uri)
        self.counts.removed[reason] = self.counts.removed.get(reason, 0) + self.counts.kept
        self.counts.kept = 0

    def _flush(self) -> None:
        try:
            self._write_buffers()
        except OSError as e:
            raise StorageError(f"{self.root}: cannot write task {self.task}'s part: {e}") from e

    def _write_buffers(self) -> None:
        if self._rows:
            self._writer.write(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []
        if self._rejects:
            self._rwriter.write(pa.Table.from_pylist(self._rejects, schema=REJECT_SCHEMA))
            self._rejects = []

    def close(self) -> tuple[list[PartInfo], list[PartInfo]]:
        self._flush()
        return self._writer.close(), self._rwriter.close()


# --------------------------------------------------------------------------- per-file engine

FileTask = Callable[[str, TaskSink], None]
FAILED_FILE_REASON = "input_file_failed"


def _marker_uri(output: str, task: int) -> str:
    return join(output, TASKS_DIR, f"task-{task:05d}.json")


def _run_one(store: Storage, output: str, schema: pa.Schema, audit: str, rate: float, target_bytes: int, fn: FileTask,
             key: str, task: int, uri: str, drop_failed: bool = False) -> dict:
    started = time.time()
    sink = TaskSink(store, output, task, schema, audit, rate, target_bytes)
    try:
        fn(uri, sink)
    except OSError:
        raise  # storage or disk failed (StorageError is an OSError): Spark retries the task
    except Exception as e:  # a broken input file: keep what was read, record the error
        sink.fail(f"{type(e).__name__}: {e}")
    if sink.error and drop_failed:
        sink.discard_kept(FAILED_FILE_REASON)
    parts, rejects = sink.close()
    marker = {"task": task, "input": uri, "key": key, "counts": sink.counts.to_dict(), "error": sink.error,
              "parts": [p.to_dict() for p in parts], "rejects": [p.to_dict() for p in rejects],
              "stats": sink.stats, "seconds": round(time.time() - started, 3)}
    store.write_text(_marker_uri(output, task), json.dumps(marker))
    return marker


def _read_marker(store: Storage, output: str, task: int, key: str, uri: str, committed: dict | None = None) -> dict | None:
    m_uri = _marker_uri(output, task)
    try:
        if not store.exists(m_uri):
            return None
        m = json.loads(store.read_text(m_uri))
    except (StorageError, ValueError):
        return None
    if m.get("input") != uri or m.get("error"):
        return None  # another input, or a failed file: run it again
    if m.get("key") != key and not _in_committed(m, key, committed):
        return None  # another config or input
    for p in marker_parts(m, "parts") + marker_parts(m, "rejects"):
        if not store.exists(join(output, p["path"])):
            return None
    return m


def marker_parts(m: dict, kind: str) -> list[dict]:
    """A task report's part files of ``kind`` ("parts" or "rejects"): a list, or one file (or None) as markers
    written before parts rotated had them ("part", "rejects")."""
    got = m.get(kind) if kind == "rejects" or kind in m else m.get("part")
    return got if isinstance(got, list) else [got] if got else []


def _in_committed(m: dict, key: str, committed: dict | None) -> bool:
    """--retry-failed: a task of the committed stage is kept though the input's fingerprint changed (the failed
    files were fixed): same config, and its parts are the ones the committed manifest lists."""
    if committed is None or str(m.get("key", "")).split(":")[0] != key.split(":")[0]:
        return False
    listed = {p["path"] for p in committed["parts"]} | {p["path"] for p in committed["rejects"]}
    return all(p["path"] in listed for p in marker_parts(m, "parts") + marker_parts(m, "rejects"))


def run_file_tasks(ctx: StageContext, fn: FileTask, schema: pa.Schema, label: str = "files",
                   drop_failed: bool = False) -> StageResult:
    """One Spark task per input file; tasks finished by an earlier attempt of this stage are reused.
    ``drop_failed``: a file that fails part-way keeps none of its rows (they become FAILED_FILE_REASON rejects)."""
    store, out = ctx.store, ctx.output
    key = f"{ctx.config_hash}:{ctx.input.fingerprint}"
    files = ctx.input.parts
    done: dict[int, dict] = {}
    if not ctx.force:
        for i, uri in enumerate(files):
            m = _read_marker(store, out, i, key, uri, ctx.retry_of)
            if m is not None:
                done[i] = m
    todo = [(i, uri) for i, uri in enumerate(files) if i not in done]
    if done:
        print(f"[{ctx.stage}] resuming: {len(done)} of {len(files)} {label} already done", file=sys.stderr)
    if todo:
        spark = ctx.spark
        sc = spark.sparkContext
        audit, rate, target = ctx.cfg.run.audit, ctx.cfg.run.audit_sample_rate, ctx.cfg.run.target_part_bytes
        docs_acc = sc.accumulator(0)

        def task(item):
            task_gc.tune()  # a Python worker's collector, set once per process (pipeline.core.task_gc)
            i, uri = item
            m = _run_one(store, out, schema, audit, rate, target, fn, key, i, uri, drop_failed)
            docs_acc.add(m["stats"].get("records", m["counts"]["in"]))  # extract: WARC records read
            return m

        sc.setJobDescription(f"mdr {ctx.stage}: {len(todo)} {label}")
        with Progress(ctx.stage, sc, len(todo), label, docs_acc):
            for m in sc.parallelize(todo, len(todo)).map(task).collect():
                done[m["task"]] = m
    counts, parts, rejects, failed, stats = Counts(), [], [], [], {}
    inputs = []
    for i in sorted(done):
        m = done[i]
        entry = {"file": m["input"], "in": m["counts"]["in"], "kept": m["counts"]["kept"], "error": m["error"]}
        if "records" in m["stats"]:  # WARC records read, responses or not (extract)
            entry["records"] = m["stats"]["records"]
        inputs.append(entry)
        counts.merge(Counts.from_dict(m["counts"]))
        parts += [PartInfo(**p) for p in marker_parts(m, "parts")]
        rejects += [PartInfo(**p) for p in marker_parts(m, "rejects")]
        if m["error"]:
            failed.append({"file": m["input"], "error": m["error"]})
        for k, v in m["stats"].items():
            if isinstance(v, (int, float)):
                stats[k] = stats.get(k, 0) + v
            elif isinstance(v, dict):  # counts by key (records_by_type): summed key by key
                into = stats.setdefault(k, {})
                for kk, vv in v.items():
                    into[kk] = into.get(kk, 0) + vv
    stats["inputs"] = inputs
    return StageResult(parts, rejects, schema, counts, failed, stats)


class Progress:
    """Prints tasks done, documents read, rate and ETA while a Spark job runs (a line every few seconds).
    ``total=None`` (a DataFrame job of several Spark stages): the tasks of the Spark stages running now, with
    their ETA, and the documents written so far."""

    def __init__(self, stage: str, sc, total: int | None, label: str, docs_acc=None, every: float = 5.0) -> None:
        self.stage, self.sc, self.total, self.label, self.docs_acc, self.every = stage, sc, total, label, docs_acc, every
        self._stop = threading.Event()
        self._t0 = time.time()
        self._seen: dict[int, float] = {}  # Spark stage id -> when this progress first saw it running
        self._failed = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._failed = exc_type is not None
        self._print(final=True)

    def _done_tasks(self) -> int:
        try:
            tracker = self.sc.statusTracker()
            n = 0
            for sid in tracker.getActiveStageIds():
                info = tracker.getStageInfo(sid)
                if info:
                    n += info.numCompletedTasks
            return n
        except Exception:
            return 0

    def _running_stages(self) -> tuple[int, int, float | None]:
        """(completed, total) tasks of the running Spark stages, and the longest ETA among them."""
        done = total = 0
        eta = None
        try:
            tracker = self.sc.statusTracker()
            for sid in tracker.getActiveStageIds():
                info = tracker.getStageInfo(sid)
                if not info:
                    continue
                seen = self._seen.setdefault(sid, time.time())
                done, total = done + info.numCompletedTasks, total + info.numTasks
                if 0 < info.numCompletedTasks < info.numTasks:
                    left = (time.time() - seen) / info.numCompletedTasks * (info.numTasks - info.numCompletedTasks)
                    eta = max(eta or 0.0, left)
        except Exception:
            pass
        return done, total, eta

    def _print(self, final: bool = False) -> None:
        elapsed = time.time() - self._t0
        docs = self.docs_acc.value if self.docs_acc is not None else 0
        if self.total is None:
            if final:
                verdict = "failed" if self._failed else "done"
                line = f"[{self.stage}] Spark job {verdict}: {docs:,} {self.label}, {elapsed:.0f}s"
            else:
                done, total, eta = self._running_stages()
                line = (f"[{self.stage}] running Spark stages: {done}/{total} tasks"
                        + (f" (ETA {eta:.0f}s)" if eta is not None else "")
                        + f", {docs:,} {self.label}, {docs / elapsed if elapsed > 0 else 0.0:,.1f}/s, {elapsed:.0f}s")
            self._emit(line, final)
            return
        done = self.total if final else self._done_tasks()
        rate = docs / elapsed if elapsed > 0 else 0.0
        eta = ""
        if not final and 0 < done < self.total:
            eta = f", ETA {elapsed / done * (self.total - done):.0f}s"
        line = (f"[{self.stage}] {done}/{self.total} {self.label}, {docs:,} records, "
                f"{rate:,.1f} records/s, {elapsed:.0f}s{eta}")
        self._emit(line, final)

    def _emit(self, line: str, final: bool) -> None:
        if self._tty and not final:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        else:
            print(("\r" if self._tty else "") + line, file=sys.stderr, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._print()


def format_error(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()
