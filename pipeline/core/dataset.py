"""Datasets: Parquet part files committed by a ``_manifest.json`` written last.

Readers read only the parts a manifest lists, so a retried or speculative task's extra files and a
half-written stage are invisible. Parts are named ``part-<task>-r<run>-<attempt>.parquet`` (``PART_NAME``):
two attempts of one task never overwrite each other, the driver lists exactly one of them, and cleanup
knows which run wrote a file (``pipeline.core.output_lease``). A folder with such files but no manifest is a
stage that did not finish: it is never read as an external dataset.
External datasets (Parquet or JSONL(.gz) files with a ``text`` column) are read the same way.

Part sizes: every writer is a ``RotatingPartWriter``: a task's part is closed and the next one (``..._c001``,
``_c002``, ... in ``PART_NAME``) begun once it holds ``run.target_part_bytes`` as written, and row groups hold at
most a few MB, so readers stream parts a row group at a time (``iter_part``) with only the columns they need,
whatever the input's size. JSONL external files have no row groups: they are read whole, one file at a time.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.core.profile import Profiler, is_rejects_schema
from pipeline.core.profile import merge as merge_profiles
from pipeline.core.storage import Storage, StorageError, basename, join, relative_to

MANIFEST = "_manifest.json"
REJECTS_DIR = "_rejects"
TASKS_DIR = "_tasks"
CHECKPOINTS_DIR = "_checkpoints"  # round checkpoints of a running stage (pipeline.core.connected_components)
FORMAT = "mdr.manifest/1"
LEASE = "_lease.json"
# the names mdr gives part files; parts of mdr versions before the run id (no "r<run>-") match too
# (a rotated task's later parts end in _c<N>: they sort after its first one, in the order they were written)
PART_NAME = re.compile(r"^part-\d{5,}-(?:r(?P<run>[0-9a-f]{8})-)?(?:a\d+-[0-9a-f]{6}|s\d{3,}-[0-9a-f]{8}|[0-9a-f]{8})"
                       r"(?:_c\d{3,})?\.parquet$")
RUN_PROPERTY = "mdr.run"  # Spark local property: the id of the stage run whose tasks write parts
EXTERNAL_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json.gz", ".ndjson", ".ndjson.gz")


class ManifestConflict(RuntimeError):
    """Another run committed this output after this run started: this run's manifest is not written."""


class ConservationError(RuntimeError):
    """in != kept + sum(removed): a stage lost or invented documents; it is not committed."""


@dataclass
class Counts:
    """Documents in, kept, and removed per reason. ``in == kept + sum(removed)`` must hold."""
    n_in: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    def keep(self, n: int = 1) -> None:
        self.n_in += n
        self.kept += n

    def drop(self, reason: str, n: int = 1) -> None:
        self.n_in += n
        self.removed[reason] = self.removed.get(reason, 0) + n

    def merge(self, other: "Counts") -> "Counts":
        self.n_in += other.n_in
        self.kept += other.kept
        for k, v in other.removed.items():
            self.removed[k] = self.removed.get(k, 0) + v
        return self

    def check(self, where: str = "") -> None:
        total = self.kept + sum(self.removed.values())
        if total != self.n_in:
            raise ConservationError(f"{where}: in={self.n_in} but kept={self.kept} + removed={sum(self.removed.values())} "
                                    f"= {total} ({self.removed}); the stage is not committed")

    def to_dict(self) -> dict:
        return {"in": self.n_in, "kept": self.kept, "removed": dict(sorted(self.removed.items()))}

    @classmethod
    def from_dict(cls, d: dict) -> "Counts":
        return cls(d.get("in", 0), d.get("kept", 0), dict(d.get("removed", {})))


@dataclass
class PartInfo:
    path: str  # relative to the dataset root
    rows: int
    bytes: int
    profile: dict | None = None  # small stats of its rows (pipeline.core.profile), merged into the manifest

    def to_dict(self, profile: bool = True) -> dict:
        d = {"path": self.path, "rows": self.rows, "bytes": self.bytes}
        if profile and self.profile is not None:
            d["profile"] = self.profile
        return d


def run_prefix(run: str | None) -> str:
    return f"r{run}-" if run else ""


def attempt_token() -> str:
    """Unique per task attempt, so retried/speculative attempts never write the same file; in a Spark task it
    starts with the id of the stage run (``RUN_PROPERTY``), so cleanup can tell runs apart."""
    try:
        from pyspark import TaskContext
        ctx = TaskContext.get()
        if ctx is not None:
            return f"{run_prefix(ctx.getLocalProperty(RUN_PROPERTY))}a{ctx.attemptNumber()}-{secrets.token_hex(3)}"
    except ImportError:
        pass
    return secrets.token_hex(4)


ROW_GROUP_BYTES = 8 << 20   # Arrow bytes per row group at most: what a streaming reader holds of one column set
READ_BATCH_ROWS = 2000      # rows per batch a streaming reader yields (at most a row group's)


def _stats_columns(schema: pa.Schema) -> list[str]:
    """Columns whose min/max the footer keeps: not strings, whose statistics (texts of KBs, per row group) would
    make the footer grow with the part and the part outgrow ``position``, and which no reader filters on."""
    return [f.name for f in schema if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                                            or pa.types.is_binary(f.type))]


class PartWriter:
    """Streams record batches into one Parquet part file (bounded memory); ``close()`` -> PartInfo. Every
    ``write`` ends its own row groups; ``position`` is the bytes written so far (footer excluded)."""

    def __init__(self, store: Storage, root: str, rel_path: str, schema: pa.Schema) -> None:
        self.store, self.rel_path, self.schema = store, rel_path, schema
        self.uri = join(root, rel_path)
        self._sink = store.open_write(self.uri)
        self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd", write_statistics=_stats_columns(schema))
        self.rows = 0
        self._profiler = Profiler(rejects=is_rejects_schema(schema))

    @property
    def position(self) -> int:
        return self._sink.tell()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows:
            if isinstance(batch, pa.RecordBatch):
                batch = pa.Table.from_batches([batch])
            batch = batch.cast(self.schema) if batch.schema != self.schema else batch
            self._writer.write_table(batch)
            self.rows += batch.num_rows
            self._profiler.add(batch)

    def close(self) -> PartInfo:
        self._writer.close()
        self._sink.close()
        self.store.sync(self.uri)  # on local disk: its bytes are on the device before a manifest can list it
        return PartInfo(self.rel_path, self.rows, self.store.size(self.uri) or 0, self._profiler.result())

    def abort(self) -> None:
        try:
            self._writer.close()
            self._sink.close()
        except Exception:
            pass


class RotatingPartWriter:
    """One task's kept rows (or rejects) as parts of about ``target_bytes`` each: a part is closed before a row
    group that would take it past the target (its size estimated from the part's bytes per Arrow byte so far) or
    once the bytes written reach it, and the next one (``part_path(..., chunk=n)``) is opened on the next write.
    Each write is cut into row groups of at most ``ROW_GROUP_BYTES`` (and a quarter of the target) of Arrow data,
    so a part exceeds the target only by that estimate's error (and a footer). Opens no file until a row comes; ``close()`` -> the
    parts in the order written (which is also their names' order)."""

    def __init__(self, store: Storage, root: str, task: int, token: str, schema: pa.Schema, target_bytes: int,
                 rejects: bool = False) -> None:
        self.store, self.root, self.task, self.token, self.schema = store, root, task, token, schema
        self.target_bytes, self.rejects = target_bytes, rejects
        self.row_group_bytes = max(16 << 10, min(ROW_GROUP_BYTES, target_bytes // 4))
        self.parts: list[PartInfo] = []
        self._cur: PartWriter | None = None
        self._arrow_bytes = 0  # Arrow bytes written to the current part

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        n = batch.num_rows
        if not n:
            return
        step = max(1, int(self.row_group_bytes * n // max(1, batch.nbytes)))
        for off in range(0, n, step):
            piece = batch.slice(off, step)
            if self._cur is not None and self._cur.position and self._arrow_bytes:
                # the part's written bytes per Arrow byte so far estimate this row group's size on disk: a part
                # it would take past the target is closed first (measured: 17.1 MB parts at a 16 MB target)
                if self._cur.position + piece.nbytes * self._cur.position / self._arrow_bytes > self.target_bytes:
                    self.parts.append(self._cur.close())
                    self._cur = None
            if self._cur is None:
                self._cur = PartWriter(self.store, self.root, part_path(self.task, self.token, self.rejects,
                                                                        chunk=len(self.parts)), self.schema)
                self._arrow_bytes = 0
            self._cur.write(piece)
            self._arrow_bytes += piece.nbytes
            if self._cur.position >= self.target_bytes:
                self.parts.append(self._cur.close())
                self._cur = None

    def close(self) -> list[PartInfo]:
        if self._cur is not None:
            self.parts.append(self._cur.close())
            self._cur = None
        return self.parts

    def abort(self) -> None:
        if self._cur is not None:
            self._cur.abort()
            self._cur = None


def part_path(task: int, token: str, rejects: bool = False, chunk: int = 0) -> str:
    name = f"part-{task:05d}-{token}{f'_c{chunk:03d}' if chunk else ''}.parquet"
    return f"{REJECTS_DIR}/{name}" if rejects else name


# --------------------------------------------------------------------------- rejects

REJECT_SCHEMA = pa.schema([
    ("id", pa.string()), ("url", pa.string()), ("reason", pa.string()),
    ("details", pa.string()),  # JSON: the scores behind the decision, duplicate_of, ...
    ("text", pa.string()),     # full (audit=full), a head (sampled), or null
])


def keeps_text(doc_id: str, audit: str, rate: float) -> bool:
    """Deterministic: the same documents are sampled on every run."""
    if audit == "full":
        return True
    if audit == "none" or rate <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")
    return h / 2 ** 64 < rate


def reject_row(doc_id: str, url: str | None, reason: str, details: dict | None, text: str | None,
               audit: str, rate: float, head_chars: int = 600) -> dict:
    if text is not None and keeps_text(doc_id, audit, rate):
        text = text if audit == "full" else text[:head_chars]
    else:
        text = None
    return {"id": doc_id, "url": url, "reason": reason,
            "details": json.dumps(details, sort_keys=True, default=_json_default) if details else None, "text": text}


def _json_default(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


# --------------------------------------------------------------------------- manifests

def manifest_uri(root: str) -> str:
    return join(root, MANIFEST)


STAGE_ORDER = ["extract", "filter", "dedup_fuzzy", "dedup_exact", "quality"]  # a run's stages in order (status, report, card)


def read_manifest(store: Storage, root: str) -> dict | None:
    uri = manifest_uri(root)
    if not store.exists(uri):  # a store we cannot reach (credentials, endpoint) raises: never "not committed"
        return None
    return _parse_manifest(uri, store.read_bytes(uri))


def _parse_manifest(uri: str, raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise StorageError(f"{uri}: manifest is not valid JSON ({e}); delete it or re-run the stage with --force") from None
    if data.get("format") != FORMAT:
        raise StorageError(f"{uri}: not an mdr manifest (format {data.get('format')!r})")
    return data


def schema_fields(schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def build_manifest(*, stage: str, config_hash: str, input_desc: dict, parts: list[PartInfo],
                   rejects: list[PartInfo], schema: pa.Schema, counts: Counts, failed_inputs: list[dict],
                   started: float, stats: dict | None = None, params: dict | None = None,
                   logic_version: int | None = None) -> dict:
    finished = time.time()
    return {
        "format": FORMAT,
        "stage": stage,
        "code_version": __version__,
        "logic_version": logic_version,  # the stage's (pipeline.core.stage.StageSpec); another one is re-run
        "config_hash": config_hash,
        "params": params or {},
        "input": input_desc,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "parts": [p.to_dict(profile=False) for p in sorted(parts, key=lambda p: p.path)],
        "rejects": [p.to_dict(profile=False) for p in sorted(rejects, key=lambda p: p.path)],
        "rows": sum(p.rows for p in parts),
        "schema": schema_fields(schema),
        "counts": counts.to_dict(),
        "failed_inputs": failed_inputs,
        "timings": {"started": started, "finished": finished, "seconds": round(finished - started, 3)},
        "stats": stats or {},
        "profile": {"kept": merge_profiles(p.profile for p in parts),
                    "removed": merge_profiles(p.profile for p in rejects)},
    }


ANY_VERSION = "*any*"  # commit() without a condition (a store without conditional writes)


def read_manifest_versioned(store: Storage, root: str) -> tuple[dict | None, str | None]:
    """The committed manifest (None: there is none) and, from the same read, the version a later
    ``commit(expect=...)`` must still find: None when there is none, ANY_VERSION where the store has no
    conditional writes (gs://)."""
    uri = manifest_uri(root)
    if not store.supports_conditional(uri):
        return read_manifest(store, root), ANY_VERSION
    cur = store.read_versioned(uri)
    if cur is None:
        return None, None
    return _parse_manifest(uri, cur.data), cur.etag


def commit(store: Storage, root: str, manifest: dict, expect: str | None = ANY_VERSION) -> None:
    """Write the manifest last: from this moment the dataset exists. With ``expect`` (from ``read_manifest_versioned``)
    it is written only over that version, so of two runs that started from the same state one commits."""
    counts = Counts.from_dict(manifest["counts"])
    counts.check(f"stage {manifest['stage']} at {root}")
    if counts.kept != manifest["rows"]:
        raise ConservationError(f"stage {manifest['stage']}: counts say kept={counts.kept} but parts hold "
                                f"{manifest['rows']} rows; not committed")
    for folder in (root, join(root, REJECTS_DIR)):  # local disk: the parts' names are durable before the manifest
        if store.exists(folder):
            store.sync(folder)
    data = json.dumps(manifest, indent=1, sort_keys=False).encode()
    if expect == ANY_VERSION:
        store.write_bytes(manifest_uri(root), data)
    elif store.write_if(manifest_uri(root), data, expect) is None:
        raise ManifestConflict(f"stage {manifest['stage']}: another run committed {manifest_uri(root)} after this "
                               f"run started; this run's result is not committed (its files are cleaned up by the "
                               f"next run). Re-run the command if the other run's output is not what you want")


def verify_parts(store: Storage, root: str, manifest: dict) -> list[str]:
    """The listed part files that are missing or whose size differs from the manifest's (one listing per folder)."""
    sizes = {}
    for folder in (root, join(root, REJECTS_DIR)):
        sizes.update(store.file_sizes(folder, recursive=False))
    problems = []
    for p in manifest.get("parts", []) + manifest.get("rejects", []):
        size = sizes.get(join(root, p["path"]))
        if size is None:
            problems.append(f"{p['path']} is missing")
        elif size != p["bytes"]:
            problems.append(f"{p['path']} has {size:,} bytes, not {p['bytes']:,}")
    return problems


# --------------------------------------------------------------------------- inputs

@dataclass
class InputDataset:
    """The committed parts of a stage's output, or the files of an external dataset."""
    uri: str
    parts: list[str]              # absolute URIs, sorted
    rows: int | None              # known for committed datasets
    fingerprint: str              # changes when the input changes
    external: bool
    bytes: int | None = None      # the files' size: what shuffle partition counts follow (pipeline.core.spark)
    part_sizes: list[tuple[int, int]] | None = None  # (rows, bytes) per part, from the manifest

    def chunks(self, target_bytes: int) -> list[tuple[int, str, tuple[int, int] | None]]:
        """(part index, uri, row range or None) per read task: a committed part larger than ``target_bytes`` is
        read by several tasks, each a [start, end) range of its rows, so a task's share (and what its shuffle
        writer buffers) stays near ``target_bytes`` whatever size the parts are; an external file is one task."""
        if not self.part_sizes:
            return [(i, u, None) for i, u in enumerate(self.parts)]
        out = []
        for i, (uri, (rows, size)) in enumerate(zip(self.parts, self.part_sizes)):
            k = max(1, min(rows, -(-size // max(1, target_bytes))))
            out += [(i, uri, None)] if k == 1 else [(i, uri, (rows * j // k, rows * (j + 1) // k)) for j in range(k)]
        return out

    def describe(self) -> dict:
        return {"uri": self.uri, "fingerprint": self.fingerprint, "parts": len(self.parts), "rows": self.rows,
                "external": self.external}


def open_input(store: Storage, uri: str) -> InputDataset:
    """A committed dataset (by its manifest) or an external Parquet/JSONL(.gz) dataset (file or folder)."""
    man = read_manifest(store, uri)
    if man is not None:
        parts = [join(uri, p["path"]) for p in man["parts"]]
        fp = hashlib.sha256(json.dumps([man["config_hash"], man["parts"]], sort_keys=True).encode()).hexdigest()[:16]
        return InputDataset(uri, parts, man["rows"], fp, external=False, bytes=sum(p["bytes"] for p in man["parts"]),
                            part_sizes=[(p["rows"], p["bytes"]) for p in man["parts"]])
    if store.is_dir(uri) or uri.endswith("/"):
        files = [f for f in store.list_files(uri) if f.endswith(EXTERNAL_SUFFIXES)]
        refuse_stage_folders(store, uri, files)
    elif store.exists(uri):
        files = [uri] if uri.endswith(EXTERNAL_SUFFIXES) else []
    else:
        raise StorageError(f"{uri}: no such dataset (no _manifest.json, no Parquet/JSONL files); check the path")
    if not files:
        raise StorageError(f"{uri}: no _manifest.json and no .parquet/.jsonl(.gz) files: not a dataset")
    ident = [(f, store.size(f)) for f in files]
    fp = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]
    return InputDataset(uri, files, None, fp, external=True, bytes=sum(n or 0 for _, n in ident))


def refuse_stage_folders(store: Storage, uri: str, files: list[str]) -> None:
    """An external dataset is never an mdr stage output: a folder holding mdr part files (or ``_tasks/``, or a
    lease) without a manifest is a stage that did not finish; one holding committed stages is a run root."""
    top = uri.rstrip("/")
    folders = sorted({f.rsplit("/", 1)[0] for f in files if PART_NAME.match(basename(f))})
    stages = [d for d in folders if d != top and store.exists(manifest_uri(d))]
    if stages:
        raise StorageError(f"{uri}: an mdr run root (it holds the committed stages "
                           f"{', '.join(basename(d) for d in stages)}), not a dataset: pass one stage's folder as "
                           f"input, e.g. {stages[-1]}")
    unfinished = [d for d in folders if d not in stages]
    if store.exists(join(uri, TASKS_DIR)) or store.exists(join(uri, LEASE)):
        unfinished = [top] + [d for d in unfinished if d != top]
    if unfinished:
        d = unfinished[0]
        raise StorageError(f"{d}: an mdr stage output without {MANIFEST}: stage {basename(d)} did not finish (or is "
                           f"still running); re-run it (the same command resumes it), then read its committed folder")


def external_id(rel_path: str, index: int) -> str:
    """The id of row ``index`` of an external file without one: from the file's path below the dataset root and the
    row, so files of one name in two folders never collide (128 bits, hex, as extract's ids)."""
    return hashlib.sha1(f"{rel_path}:{index}".encode()).hexdigest()[:32]


def normalize_external(table: pa.Table, part_uri: str, root: str | None = None, offset: int = 0) -> pa.Table:
    """External rows need ``text``; ``url`` (null) is added if absent, and ``id`` (stable: the file's path below
    ``root``, the dataset root, and the row) where absent, null or empty. ``offset``: the file row of the table's
    first row (a streamed batch). A table read without its ``text`` column (not asked for) gets none."""
    if "text" in table.column_names and table.schema.field("text").type != pa.string():
        table = table.set_column(table.column_names.index("text"), "text", table.column("text").cast(pa.string()))
    if "id" not in table.column_names:
        table = table.append_column("id", pa.nulls(table.num_rows, pa.string()))
    elif table.schema.field("id").type != pa.string():
        table = table.set_column(table.column_names.index("id"), "id", table.column("id").cast(pa.string()))
    if _missing_ids(table):
        rel = relative_to(root or part_uri, part_uri)
        ids = [i if i else external_id(rel, offset + n) for n, i in enumerate(table.column("id").to_pylist())]
        table = table.set_column(table.column_names.index("id"), "id", pa.array(ids, pa.string()))
    if "url" not in table.column_names:
        table = table.append_column("url", pa.nulls(table.num_rows, pa.string()))
    elif table.schema.field("url").type != pa.string():
        table = table.set_column(table.column_names.index("url"), "url", table.column("url").cast(pa.string()))
    return table


def _require_text(names: list[str], uri: str) -> None:
    if "text" not in names:
        raise StorageError(f"{uri}: no 'text' column (columns: {', '.join(names)}); "
                           f"external datasets need a text column")


def _missing_ids(table: pa.Table) -> bool:
    ids = table.column("id")
    return ids.null_count > 0 or bool(pc.any(pc.equal(ids, "")).as_py())


def _needs_normalizing(schema: pa.Schema) -> bool:
    return any(c not in schema.names or schema.field(c).type != pa.string() for c in ("id", "url", "text"))


def _select(table: pa.Table, columns: list[str] | None, uri: str) -> pa.Table:
    if not columns:
        return table
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise StorageError(f"{uri}: missing columns {missing}")
    return table.select(columns)


def _read_json(store: Storage, uri: str) -> pa.Table:
    """A JSONL(.gz) file, whole: it has no row groups to stream (one such file is one task's input)."""
    data = store.read_bytes(uri)
    if uri.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return pajson.read_json(io.BytesIO(data))
    except pa.ArrowInvalid as e:
        raise StorageError(f"{uri}: not valid JSON lines: {e}") from None


def open_parquet(store: Storage, uri: str) -> pq.ParquetFile:
    """A Parquet file opened for ranged reads: its footer now, row groups as they are asked for."""
    try:
        return pq.ParquetFile(store.open_read(uri, random_access=True))
    except pa.ArrowInvalid as e:
        raise StorageError(f"{uri}: not a Parquet file: {e}") from None


def part_schema(store: Storage, uri: str) -> pa.Schema:
    """The schema of a part's rows as ``iter_part`` yields them: a Parquet footer (plus the columns an external
    file gets); a JSONL file is read for it."""
    if uri.endswith(".parquet"):
        schema = open_parquet(store, uri).schema_arrow
        if not _needs_normalizing(schema):
            return schema
        _require_text(schema.names, uri)
        return normalize_external(schema.empty_table(), uri).schema
    return next(iter_part(store, uri)).schema


def part_rows(store: Storage, uri: str) -> int:
    """Rows of a part: from the Parquet footer; a JSONL file is read."""
    if uri.endswith(".parquet"):
        return open_parquet(store, uri).metadata.num_rows
    return _read_json(store, uri).num_rows


def iter_part(store: Storage, uri: str, columns: list[str] | None = None, root: str | None = None,
              rows: tuple[int, int] | None = None, batch_rows: int = READ_BATCH_ROWS) -> Iterator[pa.Table]:
    """A part's rows as tables of at most ``batch_rows`` rows, reading only ``columns`` (all: None) and, of a
    Parquet file, one row group at a time (only those that overlap ``rows``, a [start, end) range of file rows).
    External rows are normalized (``normalize_external``; ``root`` names rows without ids). A JSONL file is read
    whole. Yields at least one (maybe empty) table."""
    lo, hi = rows if rows is not None else (0, None)
    yielded = False
    if uri.endswith(".parquet"):
        pf = open_parquet(store, uri)
        names = pf.schema_arrow.names
        normalize = _needs_normalizing(pf.schema_arrow)
        if normalize:
            _require_text(names, uri)
        want = columns or names + [c for c in ("id", "url") if c not in names]
        missing = [c for c in want if c not in names and not (normalize and c in ("id", "url"))]
        if missing:
            raise StorageError(f"{uri}: missing columns {missing}")
        read = [c for c in want if c in names]
        if "id" in want and "id" in names and "id" not in read:
            read.append("id")
        md, groups, starts, at = pf.metadata, [], [], 0
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if at + n > lo and (hi is None or at < hi):
                groups.append(g)
                starts.append(at)
            at += n
        at = starts[0] if starts else 0
        for b in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=read, use_threads=False):
            t = pa.Table.from_batches([b])
            first = at
            at += t.num_rows
            s, e = max(lo, first) - first, (t.num_rows if hi is None else min(hi, at) - first)
            if e <= 0 or s >= t.num_rows:
                continue
            t = t.slice(s, e - s)
            if normalize or ("id" in t.column_names and _missing_ids(t)):
                t = normalize_external(t, uri, root, first + s)
            yield _select(t, want, uri)
            yielded = True
        if not yielded:
            empty = pf.schema_arrow.empty_table().select(read)
            yield _select(normalize_external(empty, uri, root) if normalize else empty, want, uri)
        return
    table = _read_json(store, uri)
    _require_text(table.column_names, uri)
    if _needs_normalizing(table.schema) or _missing_ids(table):
        table = normalize_external(table, uri, root)
    table = _select(table, columns, uri)
    table = table.slice(lo, (table.num_rows if hi is None else hi) - lo)
    batches = table.to_batches(max_chunksize=batch_rows)
    for b in batches:
        yield pa.Table.from_batches([b])
    if not batches:
        yield table


def read_part(store: Storage, uri: str, columns: list[str] | None = None, root: str | None = None) -> pa.Table:
    """One part file as one Arrow table (Parquet or JSONL/JSONL.gz), for small data and tests; stages stream it
    with ``iter_part``. ``root``: the dataset's root, which names the rows of an external file without ids
    (``external_id``); without it, the file is its own dataset."""
    return pa.concat_tables(iter_part(store, uri, columns, root))


def read_dataset(store: Storage, uri: str, columns: list[str] | None = None) -> pa.Table:
    """Every committed row of a dataset, in one table (for tests and small data)."""
    ds = open_input(store, uri)
    tables = [read_part(store, p, columns, uri) for p in ds.parts]
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def read_rejects(store: Storage, root: str) -> pa.Table:
    man = read_manifest(store, root)
    if man is None:
        raise StorageError(f"{root}: no manifest")
    tables = [read_part(store, join(root, p["path"])) for p in man.get("rejects", [])]
    return pa.concat_tables(tables) if tables else REJECT_SCHEMA.empty_table()


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def chunked(it: Iterable, n: int) -> Iterator[list]:
    buf: list = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
