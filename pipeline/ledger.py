"""The refresh ledger: every WARC file ever listed, with its status, in one Parquet object in the state root.

Statuses: ``pending`` (listed, never taken), ``in_progress`` (taken by run ``run_id``), ``done`` (in release
``release``), ``failed`` (its last night failed with ``error``; retried on a later night), ``gave_up`` (failed
``refresh.max_attempts`` times, or its night was interrupted that often: reported, not retried).
A night takes the next files in a fixed order: pending and failed files, each followed source's in path order,
the sources taken in turn (round robin, sources by name) up to the budget, so a large crawl does not starve a
daily one. Only the lease holder writes the ledger, and every write is conditional on the version it read.
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, fields

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import Storage, StorageError

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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Ledger:
    def __init__(self, uri: str, entries: dict[str, Entry], etag: str | None) -> None:
        self.uri, self.entries, self.etag = uri, entries, etag

    @classmethod
    def load(cls, store: Storage, uri: str) -> "Ledger":
        cur = store.read_versioned(uri)
        if cur is None:
            return cls(uri, {}, None)
        try:
            rows = pq.read_table(io.BytesIO(cur.data)).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise StorageError(f"{uri}: the refresh ledger is unreadable ({e}); restore it from the bucket's "
                               f"versions, or move it away to start over (every file would be taken again)") from None
        names = {f.name for f in fields(Entry)}
        return cls(uri, {r["path"]: Entry(**{k: v for k, v in r.items() if k in names}) for r in rows}, cur.etag)

    def save(self, store: Storage) -> None:
        rows = [asdict(self.entries[p]) for p in sorted(self.entries)]
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf, compression="zstd")
        tag = store.write_if(self.uri, buf.getvalue(), self.etag)
        if tag is None:
            raise LedgerConflict(f"{self.uri}: the ledger was changed by another run since this one read it; this run "
                                 f"stops without writing (its lock was probably taken over)")
        self.etag = tag

    # ------------------------------------------------------------------ queries
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for e in self.entries.values():
            out[e.status] = out.get(e.status, 0) + 1
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
        for source, path in listed:
            if path not in self.entries:
                self.entries[path] = Entry(path, source, first_seen=now, updated=now)
                new += 1
        return new

    def start(self, entries: list[Entry], run_id: str) -> None:
        now = _now()
        for e in entries:
            e.status, e.run_id, e.updated = IN_PROGRESS, run_id, now

    def interrupt(self, entries: list[Entry], max_attempts: int) -> list[Entry]:
        """Files of a run that never finished, taken again: counted; those interrupted too often are given up.
        Returns the ones still to process."""
        keep, now = [], _now()
        for e in entries:
            e.interrupted += 1
            e.updated = now
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
            if o.get("error") is None:
                e.status, e.release, e.error, e.documents = DONE, release, None, o.get("documents")
            else:
                e.attempts += 1
                e.error = str(o["error"])[:500]
                e.status = GAVE_UP if e.attempts >= max_attempts else FAILED
            e.run_id = run_id if e.status == DONE else None
