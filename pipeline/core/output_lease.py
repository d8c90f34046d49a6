"""One writer per stage output, and cleanup that touches only what a run may delete.

A stage run takes a lease (``pipeline.core.lease``) in its output folder (``_lease.json``) before it reads the
committed manifest, renews it while it works and checks it right before its commit, so a second run on the same
output refuses with a message naming the holder (a holder that died on this machine is taken over at once, one that
died elsewhere after ``run.lease_ttl_s``). Every part file a run writes carries its run id
(``part-<task>-r<run>-<attempt>.parquet``); after the commit, cleanup deletes unlisted part files of this stage's
naming scheme only (top level and ``_rejects/``): those of this run always, those of earlier runs only while the
lease is still this run's (they can no longer commit). Files with other names are never touched, except
``_checkpoints/`` (round checkpoints, ``pipeline.core.connected_components``): deleted whole while the lease is this run's.
Stores without conditional writes (gs://) get no lease: only this run's own files are cleaned up there.
"""
from __future__ import annotations

import secrets
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from pipeline.core.config import Config
from pipeline.core.dataset import CHECKPOINTS_DIR, LEASE, MANIFEST, PART_NAME, REJECTS_DIR, TASKS_DIR
from pipeline.core.lease import Lease, LeaseLost
from pipeline.core.storage import Storage, StorageError, basename, join


@dataclass
class OutputRun:
    run_id: str            # 8 hex digits, in every part file name this run writes
    lease: Lease | None    # None where the store has no conditional writes

    def check(self) -> None:
        """Right before the commit: LeaseLost when another run took the output over."""
        if self.lease is not None:
            self.lease.check()

    def exclusive(self) -> bool:
        """The lease is still this run's (renewed now): no other run can commit this output."""
        if self.lease is None:
            return False
        try:
            self.lease.check()
            return True
        except (LeaseLost, StorageError, OSError):
            return False


@contextmanager
def hold_output(store: Storage, cfg: Config, output: str, stage: str) -> Iterator[OutputRun]:
    run_id = secrets.token_hex(4)
    if not store.supports_conditional(output):
        print(f"[{stage}] note: {output} has no conditional writes here, so one writer per output is not enforced: "
              f"do not run two commands on it at once", file=sys.stderr)
        yield OutputRun(run_id, None)
        return
    ttl = cfg.run.lease_ttl_s
    lease = Lease(store, join(output, LEASE), ttl, run_id, what=f"stage {stage}").acquire()
    try:
        with lease.heartbeat(ttl / 4):
            yield OutputRun(run_id, lease)
    finally:
        lease.release()


def collect_garbage(store: Storage, root: str, manifest: dict, run: OutputRun) -> None:
    """After the commit: delete the unlisted part files of this stage's naming scheme (failed attempts, earlier
    runs) and the task markers; never a file with another name, never below the top level and ``_rejects/``."""
    listed = {p["path"] for p in manifest["parts"]} | {p["path"] for p in manifest["rejects"]}
    stage = manifest["stage"]
    try:
        exclusive = run.exclusive()
        kept = 0
        for uri in store.list_files(root, recursive=False) + store.list_files(join(root, REJECTS_DIR), recursive=False):
            rel = uri[len(root.rstrip("/")) + 1:]
            m = PART_NAME.match(basename(uri))
            if rel == MANIFEST or m is None or rel in listed:
                continue
            if m["run"] == run.run_id or exclusive:
                store.delete(uri)
            else:
                kept += 1
        if kept:
            print(f"[{stage}] note: kept {kept} unlisted part files of other runs in {root} (this run no longer "
                  f"holds the output's lease); readers never see them, the next run cleans them up", file=sys.stderr)
        if (exclusive or run.lease is None) and not manifest["failed_inputs"]:  # else kept for --retry-failed
            store.delete(join(root, TASKS_DIR))
        # round checkpoints: this run's went when its stage ended; what is left is of runs that died (all of them
        # while this run holds the output alone)
        store.delete(join(root, CHECKPOINTS_DIR) if exclusive else join(root, CHECKPOINTS_DIR, run.run_id))
    except (StorageError, OSError) as e:  # garbage is invisible to readers; never fail a committed stage
        print(f"[{stage}] note: could not clean up unlisted files: {e}", file=sys.stderr)
