"""Engine noise filtered from stderr (pipeline.core.engine_logs): the lines engines write past any logger are dropped,
every other line passes, in order, from this process and from the processes started while the filter is on."""
import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import subprocess, sys
from pipeline.core.engine_logs import engine_stderr_filtered
print("mdr: before", file=sys.stderr)
with engine_stderr_filtered():
    print("mdr: inside", file=sys.stderr)
    subprocess.run(["sh", "-c", "echo 'WARNING: Using incubator modules: jdk.incubator.vector' >&2; "
                    "echo '[2026-12-06 18:20:32,715 E 15429 15429] core_worker.cc:2465: Actor with class name' >&2; "
                    "echo '[2026-12-06 18:20:32,715 F 15429 15429] core_worker.cc:1: a fatal error' >&2; "
                    "echo 'a real error from a child' >&2"], check=True)
    print("mdr: still inside", file=sys.stderr)
print("mdr: after", file=sys.stderr)
"""


def _run(verbose: str) -> list[str]:
    env = dict(os.environ, MDR_VERBOSE=verbose)
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr.splitlines()


def test_engine_noise_is_dropped_and_everything_else_passes_in_order():
    assert _run("0") == ["mdr: before", "mdr: inside",
                         "[2026-12-06 18:20:32,715 F 15429 15429] core_worker.cc:1: a fatal error",
                         "a real error from a child", "mdr: still inside", "mdr: after"]


def test_verbose_shows_the_engines_lines():
    lines = _run("1")
    assert "WARNING: Using incubator modules: jdk.incubator.vector" in lines
    assert any("core_worker.cc:2465" in line for line in lines) and len(lines) == 8
