"""Run a command as a measured child: wall time, CPU time and peak memory of its whole process tree.

- CPU: two lower bounds of the tree's user + system seconds, the larger one reported:
  (1) ``getrusage(RUSAGE_CHILDREN)`` before and after. The benchmark process makes itself a child subreaper
      (``prctl(PR_SET_CHILD_SUBREAPER)``), so a process orphaned inside the tree (Spark's JVM outliving its
      Python driver, a datatrove worker) is re-parented to it and reaped here, and counted. But a process
      whose parent ignores SIGCHLD is reaped by the kernel and its times are discarded: pyspark's daemon does
      exactly that (``signal(SIGCHLD, SIG_IGN)``), so the Spark Python workers, most of a Spark stage's work,
      are missing from (1).
  (2) every process's own CPU time read from /proc/<pid>/stat at each sample, its last reading summed over
      all processes seen: misses at most one sampling interval at the end of each process, and processes
      that live less than one interval.
  This needs Linux.
- Memory: every ``interval`` seconds, the processes descending from the benchmark process are read from
  /proc: the sum of their RSS (resident pages; pages shared between forked workers count once per
  process, an upper bound) and of their PSS (proportional set size: shared pages split between their
  users, what the tree really holds). Peaks are the largest sums seen. Per process role (Spark JVM, Spark
  Python workers, Ray, other) the largest single process and the largest role sum are kept, and
  how many processes of the role ran at once. Short spikes between two samples are missed.
- Timeline (``timeline=True``): every sample's wall clock, each process's own CPU seconds, and the PSS of each
  task process (``task_kind``: a Spark executor JVM, a Spark Python worker, a Ray worker), so CPU and the largest
  single task process can be read for any time window (``window_cpu_s``, ``window_task_peak``), e.g. one stage of
  a run on a cluster whose processes are children of the benchmark process and outlive the command.
- Wall: from start to the exit of the command itself; orphans still running after that are waited for
  (and their CPU counted) before this returns, so the next measured command starts on a quiet tree.
"""
from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

PR_SET_CHILD_SUBREAPER = 36
_SUBREAPER = False


def become_subreaper() -> bool:
    global _SUBREAPER
    if not _SUBREAPER:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _SUBREAPER = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _SUBREAPER = False
    return _SUBREAPER


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> tuple[dict[int, list[int]], dict[int, float]]:
    """(parent pid -> child pids, pid -> own user+system CPU seconds) of every process, from /proc/*/stat."""
    kids: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                ppid = int(fields[1])
                cpu[int(d)] = (int(fields[11]) + int(fields[12])) / _TICK
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids, cpu


def descendants(root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    kids = kids if kids is not None else _proc_table()[0]
    out, todo = [], list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def mem_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB from smaps_rollup; (0, 0) for a process gone or a zombie."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except OSError:
        pass
    return rss, pss


def role_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "other"
    exe = os.path.basename(argv[0].decode(errors="replace")) if argv and argv[0] else ""
    cmd = b" ".join(argv).decode(errors="replace")
    if exe == "java" or exe.startswith("java"):
        return "spark_jvm"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "spark_py_worker"
    if "ray" in exe or "ray::" in cmd or "/ray/" in cmd or "raylet" in cmd or "gcs_server" in cmd:
        return "ray"
    return "other"


def cmdline(pid: int) -> str:
    """A process's command line, arguments joined by spaces ("" for a process gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def task_kind(pid: int) -> str | None:
    """The kind of task process ``pid`` is (one Spark executor JVM, one Spark Python worker, one Ray worker), or
    None for everything else (drivers, Spark master/worker daemons, raylets, the GCS)."""
    cmd = cmdline(pid)
    if "CoarseGrainedExecutorBackend" in cmd:
        return "executor_jvm"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "spark_py_worker"
    if cmd.startswith("ray::") or "default_worker.py" in cmd:
        return "ray_worker"
    return None


@dataclass
class Measured:
    cmd: list[str]
    rc: int = 0
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    samples: int = 0
    roles: dict = field(default_factory=dict)   # role -> {single_rss_mb, single_pss_mb, sum_pss_mb, max_procs}
    stdout: str = ""
    stderr: str = ""
    orphans_waited_s: float = 0.0
    cpu_sampled_s: float = 0.0   # cross-check: own CPU of every process seen, at its last sample (a lower bound)
    started_at: float = 0.0      # wall clock (time.time()) of the start and the end of the command
    ended_at: float = 0.0
    # with timeline=True: (wall clock, {pid: own CPU s}, {pid: (task kind, PSS MB)} of the task processes)
    timeline: list = field(default_factory=list)

    def window_cpu_s(self, t0: float, t1: float) -> float:
        """CPU seconds the tree used between wall clocks t0 and t1: per process, its last reading in the window
        less its last reading before it (0 for a process first seen inside it)."""
        before: dict[int, float] = {}
        last: dict[int, float] = {}
        for t, cpu, _ in self.timeline:
            if t <= t0:
                before = cpu
            elif t <= t1:
                last.update(cpu)
            else:
                break
        return sum(max(0.0, v - before.get(p, 0.0)) for p, v in last.items())

    def window_task_peak(self, t0: float, t1: float) -> dict[str, float]:
        """Per task kind, the PSS MB of the largest single process of that kind sampled between wall clocks t0, t1."""
        out: dict[str, float] = {}
        for t, _, tasks in self.timeline:
            if t0 <= t <= t1:
                for k, mb in tasks.values():
                    out[k] = max(out.get(k, 0.0), mb)
        return out

    @property
    def cpu_rusage_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def cpu_s(self) -> float:
        """The larger of the two lower bounds (see the module docstring)."""
        return max(self.user_s + self.sys_s, self.cpu_sampled_s)


def run_measured(cmd: list[str], cwd: str | None = None, env: dict | None = None, interval: float = 0.2,
                 orphan_wait_s: float = 120.0, timeline: bool = False) -> Measured:
    if not become_subreaper():
        print("note: could not become a child subreaper; CPU of orphaned processes is not counted", file=sys.stderr)
    me = os.getpid()
    m = Measured(cmd=list(cmd))
    stop = threading.Event()
    last_cpu: dict[int, float] = {}

    def sample() -> None:
        while not stop.is_set():
            kids, cpu = _proc_table()
            pids = descendants(me, kids)
            for p in pids:
                if p in cpu:
                    last_cpu[p] = max(last_cpu.get(p, 0.0), cpu[p])
            tot_rss = tot_pss = 0
            per_role: dict[str, list[int]] = {}
            tasks: dict[int, tuple[str, float]] = {}
            now = time.time()
            for p in pids:
                rss, pss = mem_kb(p)
                if rss == 0:
                    continue
                if timeline:
                    k = task_kind(p)
                    if k is not None:
                        tasks[p] = (k, pss / 1024)
                r = role_of(p)   # not cached: a forked child changes role when it execs (python -> java)
                tot_rss += rss
                tot_pss += pss
                per_role.setdefault(r, []).append(pss)
                s = m.roles.setdefault(r, {"single_rss_mb": 0.0, "single_pss_mb": 0.0, "sum_pss_mb": 0.0, "max_procs": 0})
                s["single_rss_mb"] = max(s["single_rss_mb"], rss / 1024)
                s["single_pss_mb"] = max(s["single_pss_mb"], pss / 1024)
            for r, v in per_role.items():
                s = m.roles[r]
                s["sum_pss_mb"] = max(s["sum_pss_mb"], sum(v) / 1024)
                s["max_procs"] = max(s["max_procs"], len(v))
            m.peak_rss_mb = max(m.peak_rss_mb, tot_rss / 1024)
            m.peak_pss_mb = max(m.peak_pss_mb, tot_pss / 1024)
            if timeline:
                m.timeline.append((now, {p: cpu[p] for p in pids if p in cpu}, tasks))
            m.samples += 1
            stop.wait(interval)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    m.started_at = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    m.stdout, m.stderr = proc.communicate()
    m.wall_s = time.perf_counter() - t0
    m.ended_at = time.time()
    m.rc = proc.returncode
    # orphans of the tree (re-parented to us) are reaped here, so their CPU time is counted
    t1 = time.perf_counter()
    while time.perf_counter() - t1 < orphan_wait_s:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
    m.orphans_waited_s = time.perf_counter() - t1
    stop.set()
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m.cpu_sampled_s = sum(last_cpu.values())
    m.user_s = after.ru_utime - before.ru_utime
    m.sys_s = after.ru_stime - before.ru_stime
    return m
