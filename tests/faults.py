"""Fault injection with real processes: find this process tree's Spark Python workers and Ray actors in /proc
and SIGKILL them while they work (used by tests/test_reliability_faults.py and bench/soak.py).

Only descendants of a given root process are ever considered, so other users' Spark or Ray processes on a
shared machine are never touched.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str
    cpu_ticks: int


def processes() -> dict[int, Proc]:
    """Every process we can read: pid -> (parent, command line as shown by ps, user+system CPU ticks)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(name)] = Proc(int(name), int(fields[1]), cmd, int(fields[11]) + int(fields[12]))
    return out


def descendants(root: int, table: dict[int, Proc] | None = None) -> dict[int, Proc]:
    table = table if table is not None else processes()
    kids: dict[int, list[int]] = {}
    for p in table.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    out, todo = {}, [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out:
                out[k] = table[k]
                todo.append(k)
    return out


def spark_workers(root: int) -> dict[int, Proc]:
    """Spark's Python workers under ``root``: the processes ``pyspark.daemon`` forked (not the daemon itself)."""
    procs = descendants(root)
    return {pid: p for pid, p in procs.items()
            if "pyspark.daemon" in p.cmdline and p.ppid in procs and "pyspark.daemon" in procs[p.ppid].cmdline}


def ray_actors(root: int, name: str = "ScoreParts") -> dict[int, Proc]:
    """Ray worker processes under ``root`` whose process title names ``name`` (the quality stage's actors)."""
    return {pid: p for pid, p in descendants(root).items() if p.cmdline.startswith("ray::") and name in p.cmdline}


def busy(candidates: Callable[[], dict[int, Proc]], window: float = 0.25) -> list[int]:
    """Candidates that used CPU during ``window`` seconds: they are in the middle of a task."""
    before = candidates()
    time.sleep(window)
    after = candidates()
    return [pid for pid, p in after.items() if pid in before and p.cpu_ticks > before[pid].cpu_ticks]


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


@dataclass
class Killer:
    """A thread that SIGKILLs one busy candidate per phase: ``phase()`` names what the job is doing now (e.g. the
    stage that has no manifest yet; None: do nothing), ``candidates()`` lists the processes that may be killed.
    ``kills`` records (phase, pid, seconds since start); ``seen`` every candidate pid with the second it was first
    observed (a pid first seen after a kill is a restarted process)."""
    phase: Callable[[], str | None]
    candidates: Callable[[], dict[int, Proc]]
    phases: set[str] | None = None      # only these phases (None: any)
    per_phase: int = 1
    delay: float = 0.0                  # seconds into a phase before the first kill
    kills: list[tuple[str, int, float]] = field(default_factory=list)
    seen: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.time()
        self._phase_started: dict[str, float] = {}

    def __enter__(self) -> "Killer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                now = round(time.time() - self._t0, 2)
                for pid in self.candidates():
                    self.seen.setdefault(pid, now)
                ph = self.phase()
                if ph is not None and (self.phases is None or ph in self.phases):
                    started = self._phase_started.setdefault(ph, time.time())
                    done = sum(1 for k in self.kills if k[0] == ph)
                    if done < self.per_phase and time.time() - started >= self.delay:
                        for pid in busy(self.candidates)[:1]:
                            if kill(pid):
                                self.kills.append((ph, pid, round(time.time() - self._t0, 2)))
            except Exception:  # noqa: BLE001 - a process vanishing mid-scan is normal; keep watching
                pass
            self._stop.wait(0.05)


def stage_in_progress(root: str, stages: list[str]) -> Callable[[], str | None]:
    """For a local output root: the first stage whose ``_manifest.json`` is not there yet."""
    def phase() -> str | None:
        for s in stages:
            if not os.path.exists(os.path.join(root, s, "_manifest.json")):
                return s
        return None
    return phase
