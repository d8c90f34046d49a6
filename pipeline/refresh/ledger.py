"""The refresh ledger: every WARC file ever listed, with its status, sharded by source in the state root.

Layout (``<state>/ledger/``): one Parquet object per followed source (a crawl, a CC-NEWS month), named
``<source>-<token>.parquet`` and never overwritten, and ``_head.json``, which names each source's current object
with its counts by status. A save writes new objects for the sources that changed only, then the head, on the
condition that it is still the version this run read (``If-Match``; ``If-None-Match`` for the first): that write
is the commit, a refused one leaves the ledger as it was. Objects the head no longer names are deleted after.
A night loads the head and only the sources with files still open (pending, failed, in progress) or listed that
night, so its cost follows the followed crawls, not every crawl ever followed. A ledger of the earlier layout
(one ``ledger.parquet`` object) is read, and replaced by this layout at its first save.

Statuses: ``pending`` (listed, never taken), ``in_progress`` (taken by run ``run_id``), ``done`` (in release
``release``), ``failed`` (its last night failed with ``error``; retried on a later night), ``gave_up`` (failed
``refresh.max_attempts`` times, or its night was interrupted that often: reported, not retried).
A night takes the next files in a fixed order: pending and failed files, each followed source's in path order,
the sources taken in turn (round robin, sources by name) up to the budget, so a large crawl does not starve a
daily one. Only the lease holder writes the ledger, and every write is conditional on the version it read.
"""
from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import asdict, dataclass, fields

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.storage import SourceError, Storage, StorageError, join, safe_key

PENDING, IN_PROGRESS, DONE, FAILED, GAVE_UP = "pending", "in_progress", "done", "failed", "gave_up"
STATUSES = (PENDING, IN_PROGRESS, DONE, FAILED, GAVE_UP)


class LedgerConflict(StorageError):
    """The ledger changed since this run read it: another run wrote it; nothing more is written."""


@dataclass
class Entry:
    path: str                  # as the listing names it (relative to the source base, or a full URL)
    source: str                # the followed crawl / CC-NEWS month that listed it
    status: str = PENDING
    attempts: int = 0          # nights that ended with this file failed
    interrupted: int = 0       # nights that took it and never finished
    run_id: str | None = None
    release: str | None = None
    error: str | None = None
    documents: int | None = None   # documents extracted from it by the night that released it
    first_seen: str | None = None
    updated: str | None = None


SCHEMA = pa.schema([("path", pa.string()), ("source", pa.string()), ("status", pa.string()),
                    ("attempts", pa.int32()), ("interrupted", pa.int32()), ("run_id", pa.string()),
                    ("release", pa.string()), ("error", pa.string()), ("documents", pa.int64()),
                    ("first_seen", pa.string()), ("updated", pa.string())])


def _status_counts(statuses) -> dict[str, int]:
    """Entries per status, every status listed (0 where none)."""
    out = {s: 0 for s in STATUSES}
    for st in statuses:
        out[st] = out.get(st, 0) + 1
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


HEAD_FORMAT = "mdr.ledger/2"


def _read_rows(data: bytes, uri: str) -> list[dict]:
    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise StorageError(f"{uri}: the refresh ledger is unreadable ({e}); restore it from the bucket's "
                           f"versions, or move it away to start over (every file would be taken again)") from None
    names = {f.name for f in fields(Entry)}
    return [{k: v for k, v in r.items() if k in names} for r in rows]


class Ledger:
    def __init__(self, uri: str, store: Storage | None = None) -> None:
        """``uri``: the ledger's name in the state root (``<state>/ledger.parquet``: the earlier layout's object;
        the shards live in ``<state>/ledger/``)."""
        self.uri, self.store = uri, store
        self.root = uri[:-len(".parquet")] if uri.endswith(".parquet") else uri
        self.entries: dict[str, Entry] = {}
        self.etag: str | None = None          # the head's version this run read (None: no head yet)
        self.shards: dict[str, dict] = {}     # source -> {"path": object name, "counts": {...}} as the head says
        self.loaded: set[str] = set()
        self.dirty: set[str] = set()
        self.legacy = False                   # read from the single-object layout: migrated at the next save

    @property
    def head_uri(self) -> str:
        return join(self.root, "_head.json")

    @classmethod
    def load(cls, store: Storage, uri: str, lazy: bool = False) -> "Ledger":
        """The ledger; ``lazy``: only the sources with open files (the rest load when listed again)."""
        led = cls(uri, store)
        head = store.read_versioned(led.head_uri)
        if head is None:
            old = store.read_versioned(uri)
            if old is not None:
                for r in _read_rows(old.data, uri):
                    led.entries[r["path"]] = Entry(**r)
                led.loaded = led.dirty = {e.source for e in led.entries.values()}
                led.legacy = True
            return led
        try:
            data = json.loads(head.data)
            if data.get("format") != HEAD_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
        except ValueError as e:
            raise StorageError(f"{led.head_uri}: not an mdr ledger head ({e}); restore it from the bucket's "
                               f"versions") from None
        led.etag, led.shards = head.etag, data["shards"]
        for source, sh in sorted(led.shards.items()):
            if not lazy or any(sh["counts"].get(s) for s in (PENDING, FAILED, IN_PROGRESS)):
                led._load_shard(source)
        return led

    def _load_shard(self, source: str) -> None:
        if source in self.loaded or source not in self.shards:
            return
        uri = join(self.root, self.shards[source]["path"])
        try:
            data = self.store.read_bytes(uri)
        except SourceError:   # replaced by a later save: another run wrote the ledger since this one read it
            raise LedgerConflict(f"{self.uri}: the ledger was changed by another run since this one read it ({uri} "
                                 f"is gone); this run stops without writing") from None
        for r in _read_rows(data, uri):
            self.entries[r["path"]] = Entry(**r)
        self.loaded.add(source)

    def save(self, store: Storage) -> None:
        """Write the changed sources' objects, then the head, conditional on the version read (the commit)."""
        by_source: dict[str, list[Entry]] = {}
        for e in self.entries.values():
            if e.source in self.dirty:
                by_source.setdefault(e.source, []).append(e)
        shards, written = dict(self.shards), []
        for source in sorted(self.dirty):
            rows = [asdict(e) for e in sorted(by_source.get(source, []), key=lambda e: e.path)]
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf, compression="zstd")
            name = f"{safe_key(source)}-{secrets.token_hex(4)}.parquet"
            store.write_bytes(join(self.root, name), buf.getvalue())
            written.append(name)
            shards[source] = {"path": name, "counts": _status_counts(r["status"] for r in rows)}
        head = json.dumps({"format": HEAD_FORMAT, "updated": _now(), "shards": dict(sorted(shards.items()))},
                          indent=1).encode()
        tag = store.write_if(self.head_uri, head, self.etag)
        if tag is None:
            for name in written:
                _delete_quietly(store, join(self.root, name))
            raise LedgerConflict(f"{self.uri}: the ledger was changed by another run since this one read it; this run "
                                 f"stops without writing (its lock was probably taken over)")
        replaced = [self.shards[s]["path"] for s in self.dirty if s in self.shards]
        self.loaded |= self.dirty
        self.etag, self.shards, self.dirty = tag, shards, set()
        for name in replaced:
            _delete_quietly(store, join(self.root, name))
        if self.legacy:
            _delete_quietly(store, self.uri)
            self.legacy = False

    # ------------------------------------------------------------------ queries
    def counts(self) -> dict[str, int]:
        out = _status_counts(e.status for e in self.entries.values())
        for source, sh in self.shards.items():
            if source not in self.loaded:
                for s, n in sh["counts"].items():
                    out[s] = out.get(s, 0) + n
        return out

    def with_status(self, status: str) -> list[Entry]:
        return sorted((e for e in self.entries.values() if e.status == status), key=lambda e: e.path)

    def stale_runs(self) -> dict[str, list[Entry]]:
        """In-progress files by run id (the caller holds the lease, so those runs did not finish)."""
        out: dict[str, list[Entry]] = {}
        for e in self.with_status(IN_PROGRESS):
            out.setdefault(e.run_id or "?", []).append(e)
        return out

    def select(self, budget: int) -> list[Entry]:
        """The next files to take: pending and failed, per source in path order, sources in turn."""
        by_source: dict[str, list[Entry]] = {}
        for e in sorted(self.entries.values(), key=lambda e: e.path):
            if e.status in (PENDING, FAILED):
                by_source.setdefault(e.source, []).append(e)
        queues = [by_source[s] for s in sorted(by_source)]
        out: list[Entry] = []
        i = 0
        while len(out) < budget and any(queues):
            q = queues[i % len(queues)]
            if q:
                out.append(q.pop(0))
            i += 1
        return out

    # ------------------------------------------------------------------ changes
    def add_listed(self, listed: list[tuple[str, str]]) -> int:
        """(source, path) pairs from the listings; returns how many were new."""
        now, new = _now(), 0
        for source in sorted({s for s, _ in listed}):
            self._load_shard(source)
        for source, path in listed:
            if path not in self.entries:
                self.entries[path] = Entry(path, source, first_seen=now, updated=now)
                self.dirty.add(source)
                new += 1
        return new

    def start(self, entries: list[Entry], run_id: str) -> None:
        now = _now()
        for e in entries:
            e.status, e.run_id, e.updated = IN_PROGRESS, run_id, now
            self.dirty.add(e.source)

    def interrupt(self, entries: list[Entry], max_attempts: int) -> list[Entry]:
        """Files of a run that never finished, taken again: counted; those interrupted too often are given up.
        Returns the ones still to process."""
        keep, now = [], _now()
        for e in entries:
            e.interrupted += 1
            e.updated = now
            self.dirty.add(e.source)
            if e.interrupted >= max_attempts:
                e.status, e.run_id = GAVE_UP, None
                e.error = (f"the nights that took it were interrupted {e.interrupted} times "
                           f"(last error: {e.error or 'none'})")
            else:
                keep.append(e)
        return keep

    def finish(self, run_id: str, release: str | None, outcomes: dict[str, dict], max_attempts: int) -> None:
        """Record a night's outcome for its files: ``outcomes[path] = {"error": str | None, "documents": int}``."""
        now = _now()
        for e in self.entries.values():
            if e.status != IN_PROGRESS or e.run_id != run_id:
                continue
            o = outcomes.get(e.path, {"error": "the night's stages did not report this file"})
            e.updated = now
            self.dirty.add(e.source)
            if o.get("error") is None:
                e.status, e.release, e.error, e.documents = DONE, release, None, o.get("documents")
            else:
                e.attempts += 1
                e.error = str(o["error"])[:500]
                e.status = GAVE_UP if e.attempts >= max_attempts else FAILED
            e.run_id = run_id if e.status == DONE else None


def _delete_quietly(store: Storage, uri: str) -> None:
    """Objects no head names are invisible: failing to delete one never fails the night."""
    try:
        store.delete(uri)
    except (StorageError, OSError) as e:
        print(f"[refresh] note: could not delete {uri}: {e}", flush=True)
