"""Leases: one lease object, so two runs never work on the same thing at once. The refresh holds one in its state
root (two refreshes never process the same files); a stage run holds one in its output folder
(``pipeline.output_lease``: two runs never write one output).

- take: a conditional put that succeeds only when no lease exists (S3 ``If-None-Match: *``);
- a lease whose last renewal is older than its ``ttl_s`` (by the storage's clock: the object's Last-Modified
  against the response's Date, so machines' clocks do not matter) is expired: it is taken over with a put
  conditional on the ETag that was read (``If-Match``), so of two runs taking over at once exactly one wins;
- a running refresh renews it every ``heartbeat_s`` (``If-Match`` on its own last ETag): when that fails, the
  lease was taken over after expiring, and the run stops before committing anything (``check``);
- released with a delete conditional on its ETag, so a run never removes a lease it no longer holds.
On a local state root the same protocol runs on a file with a lock held for each compare-and-swap.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
from contextlib import contextmanager

from pipeline.storage import Storage, StorageError

FORMAT = "mdr.lease/1"


class LeaseHeld(RuntimeError):
    """Another refresh holds the lock: the message says which run, since when, and until when."""


class LeaseLost(RuntimeError):
    """This run's lease expired and was taken over: it must stop without committing."""


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def holder_is_dead(info: dict) -> bool:
    """The lease was written on this machine since its last boot by a process that has exited."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not info.get("boot_id") or info.get("boot_id") != boot_id():
        return False
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(self, store: Storage, uri: str, ttl_s: float, run_id: str, what: str = "refresh") -> None:
        self.store, self.uri, self.ttl_s, self.run_id = store, uri, ttl_s, run_id
        self.what = what  # who holds it, for messages: "refresh", "stage extract", ...
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.acquired = time.time()
        self.etag: str | None = None
        self.taken_over: dict | None = None   # the expired lease this run took over, if any
        self.lost: str | None = None
        self._lock = threading.Lock()

    def _body(self) -> bytes:
        now = time.time()
        return json.dumps({"format": FORMAT, "run_id": self.run_id, "owner": self.owner, "host": socket.gethostname(),
                           "pid": os.getpid(), "boot_id": boot_id(), "acquired": _iso(self.acquired), "renewed": _iso(now),
                           "ttl_s": self.ttl_s, "expires": _iso(now + self.ttl_s)}, sort_keys=True).encode()

    def acquire(self) -> "Lease":
        self.store.check_conditional(self.uri)  # a store that ignores the conditions is refused, not trusted
        for _ in range(5):
            tag = self.store.write_if(self.uri, self._body(), None)
            if tag is not None:
                self.etag = tag
                return self
            cur = self.store.read_versioned(self.uri)
            if cur is None:
                continue  # released between our two calls: try again
            try:
                info = json.loads(cur.data)
            except ValueError:
                info = {}
            ttl = float(info.get("ttl_s", self.ttl_s))
            age = cur.now - cur.modified
            dead = holder_is_dead(info)
            if age < ttl and not dead:
                raise LeaseHeld(describe(info, self.uri, ttl - age, self.what))
            tag = self.store.write_if(self.uri, self._body(), cur.etag)
            if tag is not None:
                self.etag, self.taken_over = tag, info
                why = "its process has exited" if dead else f"{age:.0f}s ago, ttl {ttl:.0f}s"
                print(f"[{self.what}] took over the expired lock of run {info.get('run_id', '?')} (held by "
                      f"{info.get('owner', '?')} since {info.get('acquired', '?')}, last renewed "
                      f"{info.get('renewed', '?')}: {why})", file=sys.stderr)
                return self
        cur = self.store.read_versioned(self.uri)
        info = json.loads(cur.data) if cur is not None else {}
        raise LeaseHeld(describe(info, self.uri, None, self.what))

    def renew(self) -> None:
        """Extend the lease (and publish ``run_id``); LeaseLost when someone else holds it now."""
        with self._lock:
            if self.lost:
                raise LeaseLost(self.lost)
            tag = self.store.write_if(self.uri, self._body(), self.etag)
            if tag is None:
                cur = self.store.read_versioned(self.uri)
                holder = json.loads(cur.data).get("run_id", "?") if cur is not None else "nobody"
                knobs = ("refresh.lease_ttl_s", "refresh.heartbeat_s") if self.what == "refresh" else \
                    ("run.lease_ttl_s", "run.lease_ttl_s/4")
                self.lost = (f"the lock of run {self.run_id} at {self.uri} expired and is now held by {holder}; "
                             f"this run stops without committing (raise {knobs[0]}, or check why renewals "
                             f"every {knobs[1]} did not get through)")
                raise LeaseLost(self.lost)
            self.etag = tag

    def check(self) -> None:
        """Before a commit: renew now, so a run whose lease was taken over never commits."""
        self.renew()

    def release(self) -> None:
        with self._lock:
            if self.etag is not None and not self.lost:
                try:
                    self.store.delete_if(self.uri, self.etag)
                except StorageError as e:  # it expires by itself
                    print(f"[{self.what}] note: could not release the lock ({e}); it expires after "
                          f"{self.ttl_s:.0f}s", file=sys.stderr)
            self.etag = None

    @contextmanager
    def heartbeat(self, every_s: float):
        """Renew every ``every_s`` in a background thread while the body runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_s):
                try:
                    self.renew()
                except LeaseLost:
                    return
                except (StorageError, OSError) as e:  # transient: the next beat retries well before expiry
                    print(f"[{self.what}] note: lock renewal failed ({e}); retrying in {every_s:.0f}s", file=sys.stderr)

        t = threading.Thread(target=loop, name="mdr-lease-heartbeat", daemon=True)
        t.start()
        try:
            yield self
        finally:
            stop.set()
            t.join(timeout=5)


def describe(info: dict, uri: str, expires_in: float | None, what: str = "refresh") -> str:
    run, since = info.get("run_id", "?"), info.get("acquired", "?")
    left = f"; it expires in {expires_in:.0f}s unless renewed" if expires_in is not None else ""
    if what != "refresh":
        return (f"{uri}: locked by run {run} since {since} (holder {info.get('owner', '?')}, last renewed "
                f"{info.get('renewed', '?')}{left}): another {what} run is writing this output. Nothing was done: "
                f"wait for it to finish and re-run (a finished stage is then a no-op), or write elsewhere. If that "
                f"run died, its lock expires by itself (run.lease_ttl_s), at once when it ran on this machine")
    return (f"locked by run {run} since {since} (holder {info.get('owner', '?')}, last renewed "
            f"{info.get('renewed', '?')}{left}): another refresh is running on this state root ({uri}). "
            f"Nothing was done; the next night will go on. If that run died, its lock expires by itself "
            f"(refresh.lease_ttl_s)")
