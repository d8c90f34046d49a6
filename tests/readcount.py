"""A storage that counts the bytes it serves, in every process (Spark workers too): each opened object appends
how many bytes were read from it to a log file when it is closed."""
from __future__ import annotations

import os

from pipeline.core.storage import Storage


class CountingStore(Storage):
    """Appends ``<bytes read>`` per opened object to a log file when it is closed (Spark workers too)."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "log": self.log}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.log = state["log"]

    def open_read(self, uri: str, *args, **kwargs):
        return _Counted(super().open_read(uri, *args, **kwargs), self.log)

    def read_total(self) -> int:
        if not os.path.exists(self.log):
            return 0
        with open(self.log) as f:
            return sum(int(line) for line in f)


class _Counted:
    def __init__(self, f, log: str) -> None:
        self.f, self.log, self.n = f, log, 0

    def read(self, *a):
        b = self.f.read(*a)
        self.n += len(b)
        return b

    def __getattr__(self, name):
        return getattr(self.f, name)

    def close(self) -> None:
        with open(self.log, "a") as out:
            out.write(f"{self.n}\n")
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
