"""Leases: one lease object, so two runs never work on the same thing at once. The refresh holds one in its state
root (two refreshes never process the same files); a stage run holds one in its output folder
(``pipeline.core.output_lease``: two runs never write one output).

- take: a conditional put that succeeds only when no lease exists (S3 ``If-None-Match: *``);
- a lease whose last renewal is older than its ``ttl_s`` (by the storage's clock: the object's Last-Modified
  against the response's Date, so machines' clocks do not matter) is expired: it is taken over with a put
  conditional on the ETag that was read (``If-Match``), so of two runs taking over at once exactly one wins;
- a running refresh renews it every ``heartbeat_s`` (``If-Match`` on its own last ETag): when that fails, the
  lease was taken over after expiring, and the run stops before committing anything (``check``); a renewal
  failing for another reason is retried until the lease expires;
- released with a write conditional on its ETag that marks it released, so a run never frees a lease it no
  longer holds, and the record keeps its ``generation``: every acquire or takeover adds one, so a holder's
  generation is never reused and what it writes (paths, commits) can be told from an older holder's;
- a lease whose holder ran on this machine (same host name and boot id) in a process that no longer exists is
  expired at once: a run killed on a laptop does not block the next one for ``ttl_s``;
- the heartbeat thread calls ``on_lost`` when the lease is taken over or has expired while renewals failed.
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
from typing import Callable

from pipeline.core.storage import Storage, StorageError

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
    """A lease on ``uri``: ``acquire``, ``renew`` / ``check``, ``release``, ``heartbeat``. ``generation`` counts the
    takings of this lease (every acquire or takeover adds one, a released lease keeps its count), so what a holder
    writes can carry it and a commit can refuse an older generation. ``on_lost(message)`` is called once, from the
    thread that finds the lease lost (taken over, or expired while renewals failed)."""

    def __init__(self, store: Storage, uri: str, ttl_s: float, run_id: str,
                 on_lost: Callable[[str], None] | None = None, what: str = "refresh") -> None:
        self.store, self.uri, self.ttl_s, self.run_id, self.on_lost = store, uri, ttl_s, run_id, on_lost
        self.what = what  # who holds it, for messages: "refresh", "stage extract", ...
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.acquired = time.time()
        self.etag: str | None = None
        self.taken_over: dict | None = None   # the expired lease this run took over, if any
        self.lost: str | None = None
        self._generation = 0
        self._renewed = time.monotonic()      # when the last renewal that got through was sent
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """This holder's generation (0 before ``acquire``)."""
        return self._generation

    def _body(self, released: bool = False) -> bytes:
        now = time.time()
        info = {"format": FORMAT, "run_id": self.run_id, "owner": self.owner, "host": socket.gethostname(),
                "pid": os.getpid(), "boot_id": boot_id(), "generation": self._generation, "acquired": _iso(self.acquired),
                "renewed": _iso(now), "ttl_s": self.ttl_s, "expires": _iso(now + self.ttl_s)}
        if released:
            info["released"] = _iso(now)
        return json.dumps(info, sort_keys=True).encode()

    def acquire(self, min_generation: int = 0) -> "Lease":
        """Take the lease: a new one, a released one, or an expired one (taken over); LeaseHeld when it is held.
        The generation becomes one more than the record's, and more than ``min_generation`` (what the caller
        knows was used already, should the record have been deleted by hand)."""
        self.store.check_conditional(self.uri)  # a store that ignores the conditions is refused, not trusted
        for _ in range(5):
            self._generation = min_generation + 1
            sent = time.monotonic()
            tag = self.store.write_if(self.uri, self._body(), None)
            if tag is not None:
                self.etag, self._renewed = tag, sent
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
            if age < ttl and not info.get("released") and not dead:
                raise LeaseHeld(describe(info, self.uri, ttl - age, self.what))
            self._generation = max(int(info.get("generation", 0)), min_generation) + 1
            sent = time.monotonic()
            tag = self.store.write_if(self.uri, self._body(), cur.etag)
            if tag is not None:
                self.etag, self._renewed = tag, sent
                if not info.get("released"):
                    self.taken_over = info
                    why = "its process has exited" if dead else f"{age:.0f}s ago, ttl {ttl:.0f}s"
                    print(f"[{self.what}] took over the expired lock of run {info.get('run_id', '?')} (held by "
                          f"{info.get('owner', '?')} since {info.get('acquired', '?')}, generation "
                          f"{info.get('generation', '?')}, last renewed {info.get('renewed', '?')}: {why}); this run "
                          f"is generation {self._generation}", file=sys.stderr)
                return self
        cur = self.store.read_versioned(self.uri)
        try:
            info = json.loads(cur.data) if cur is not None else {}
        except ValueError:
            info = {}
        raise LeaseHeld(describe(info, self.uri, None, self.what))

    def _lose(self, why: str) -> LeaseLost:
        """Mark the lease lost (once) and call ``on_lost``; returns the exception to raise."""
        with self._lock:
            first, self.lost = self.lost is None, self.lost or why
        if first and self.on_lost is not None:
            try:
                self.on_lost(self.lost)
            except Exception as e:  # noqa: BLE001 - the loss is recorded; the callback's failure must not hide it
                print(f"[lease] {self.uri}: the lost-lease callback failed: {type(e).__name__}: {e}", file=sys.stderr)
        return LeaseLost(self.lost)

    def renew(self) -> None:
        """Extend the lease (and publish ``run_id``); LeaseLost when someone else holds it now."""
        with self._lock:
            lost = self.lost
            if not lost:
                sent = time.monotonic()
                tag = self.store.write_if(self.uri, self._body(), self.etag)
                if tag is not None:
                    self.etag, self._renewed = tag, sent
                    return
        if lost:
            raise LeaseLost(lost)
        cur = self.store.read_versioned(self.uri)
        try:
            info = json.loads(cur.data) if cur is not None else {}
        except ValueError:
            info = {}
        holder = (f"run {info.get('run_id', '?')} (generation {info.get('generation', '?')}"
                  f"{', released since' if info.get('released') else ''})" if cur is not None else "nobody")
        raise self._lose(f"the lock of run {self.run_id} (generation {self._generation}) at {self.uri} expired and "
                         f"was taken over by {holder}; this run stops without committing (raise {self._knobs()})")

    def _knobs(self) -> str:
        if self.what == "refresh":
            return "refresh.lease_ttl_s, or check why renewals every refresh.heartbeat_s did not get through"
        return "run.lease_ttl_s, or check why renewals every quarter of it did not get through"

    def check(self) -> None:
        """Before a commit: renew now, so a run whose lease was taken over never commits."""
        self.renew()

    def release(self) -> None:
        """Mark the lease released (a conditional write on its ETag, keeping the generation count): the next
        acquire takes it at once. A lost lease is left alone."""
        with self._lock:
            if self.etag is not None and not self.lost:
                try:
                    if self.store.write_if(self.uri, self._body(released=True), self.etag) is None:
                        print(f"[lease] {self.uri}: not released: it changed since the last renewal", file=sys.stderr)
                except StorageError as e:  # it expires by itself
                    print(f"[{self.what}] note: could not release the lock ({e}); it expires after "
                          f"{self.ttl_s:.0f}s", file=sys.stderr)
            self.etag = None

    def _beat(self, every_s: float, stop: threading.Event) -> None:
        """Renew every ``every_s`` until stopped or lost. A failed renewal of any kind is logged and retried; when
        none got through for ``ttl_s`` the lease has expired: it is marked lost."""
        wait = every_s
        while not stop.wait(wait):
            wait = every_s
            try:
                self.renew()
                continue
            except LeaseLost:
                return
            except Exception as e:  # noqa: BLE001 - whatever failed, keep trying until the lease expires
                left = self.ttl_s - (time.monotonic() - self._renewed)
                if left > 0:
                    print(f"[lease] {self.uri}: renewal failed ({type(e).__name__}: {e}); retrying in "
                          f"{min(every_s, left):.1f}s, the lease expires in {left:.0f}s", file=sys.stderr, flush=True)
                    wait = min(every_s, left)
                    continue
                why = (f"the lock of run {self.run_id} (generation {self._generation}) at {self.uri} expired: no "
                       f"renewal got through for {self.ttl_s:.0f}s (last error {type(e).__name__}: {e}); this run "
                       f"stops without committing")
                print(f"[lease] {why}", file=sys.stderr, flush=True)
                self._lose(why)
                return

    @contextmanager
    def heartbeat(self, every_s: float):
        """Renew every ``every_s`` in a background thread while the body runs."""
        stop = threading.Event()
        t = threading.Thread(target=self._beat, args=(every_s, stop), name="mdr-lease-heartbeat", daemon=True)
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
