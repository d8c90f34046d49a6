"""Releases of `mdr refresh`: ``<state>/releases/<id>/`` each, listed by ``<state>/releases/_index.json``.

A release folder is a run root (``<stage>/`` datasets, ``report.html``, ``README.md``) plus ``_release.json``, its
manifest (files, counts, prior releases it was deduplicated against, the index catalog it adds). It exists for
readers only once ``_index.json`` lists it: that file is replaced in one conditional write (``If-Match`` on the
ETag read at the start of the commit, ``If-None-Match: *`` for the first release), the refresh's one commit
point. Readers read ``_index.json``, then the datasets it names; a folder it does not list is an unfinished night.

Fencing: ``_index.json`` records the newest lease generation (``pipeline.core.lease``) that took over the refresh.
A run that takes over an expired lease first writes its generation there (``fence``), so a commit prepared by
the older holder fails its ``If-Match``; ``commit`` refuses a generation older than the recorded one. A night's
files carry its generation (``_release-g<N>.json`` here, ``index/<id>/g<N>/`` and ``_catalogs/<id>-g<N>.json``),
and the index entry names them (``generation``, ``manifest``, ``catalog``), so two holders never write one path.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pipeline.core.storage import Storage, StorageError, join

FORMAT = "mdr.releases/1"
INDEX = "_index.json"
MANIFEST = "_release.json"


class ReleaseConflict(StorageError):
    """``_index.json`` changed since this run read it: another run committed; this one does not."""


@dataclass
class ReleaseIndex:
    uri: str
    data: dict
    etag: str | None

    @classmethod
    def load(cls, store: Storage, releases_root: str) -> "ReleaseIndex":
        uri = join(releases_root, INDEX)
        cur = store.read_versioned(uri)
        if cur is None:
            return cls(uri, {"format": FORMAT, "releases": []}, None)
        try:
            data = json.loads(cur.data)
        except ValueError as e:
            raise StorageError(f"{uri}: not valid JSON ({e}); restore it from the bucket's versions") from None
        if data.get("format") != FORMAT:
            raise StorageError(f"{uri}: not an mdr release index (format {data.get('format')!r})")
        return cls(uri, data, cur.etag)

    @property
    def releases(self) -> list[dict]:
        return list(self.data.get("releases", []))

    def ids(self) -> set[str]:
        return {r["id"] for r in self.releases}

    def catalog(self) -> str | None:
        """The index catalog of the latest release (relative to the state root), None before the first."""
        return self.data.get("catalog")

    @property
    def generation(self) -> int:
        """The newest lease generation fenced or committed here (0 before any)."""
        return int(self.data.get("generation", 0))

    def entry(self, release_id: str) -> dict | None:
        return next((r for r in self.releases if r["id"] == release_id), None)

    def _write(self, store: Storage, data: dict) -> "ReleaseIndex | None":
        tag = store.write_if(self.uri, json.dumps(data, indent=1).encode(), self.etag)
        return None if tag is None else ReleaseIndex(self.uri, data, tag)

    def fence(self, store: Storage, generation: int) -> "ReleaseIndex":
        """After taking over an expired lease: record ``generation`` (a conditional write), so a commit prepared by
        an older generation, which read the index before, fails. Returns the index as written."""
        cur = self
        for _ in range(5):
            if cur.generation >= generation:
                raise ReleaseConflict(f"{self.uri}: generation {cur.generation} took over the refresh after this run "
                                      f"(generation {generation}); this run stops")
            done = cur._write(store, {**cur.data, "generation": generation})
            if done is not None:
                return done
            cur = ReleaseIndex.load(store, self.uri.rsplit("/", 1)[0])  # the old holder committed just before
        raise ReleaseConflict(f"{self.uri}: kept changing while generation {generation} fenced it")

    def commit(self, store: Storage, entry: dict, catalog: str, generation: int) -> "ReleaseIndex":
        """List a new release (and make its catalog the live one) in one conditional write, as lease generation
        ``generation``: refused when the index changed since it was read or a newer generation fenced it."""
        if self.generation > generation:
            raise ReleaseConflict(f"{self.uri}: generation {self.generation} took over the refresh after this run "
                                  f"(generation {generation}); release {entry['id']} is not published")
        data = {"format": FORMAT, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "latest": entry["id"], "catalog": catalog, "generation": generation,
                "releases": sorted(self.releases + [entry], key=lambda r: r["id"])}
        done = self._write(store, data)
        if done is None:
            raise ReleaseConflict(f"{self.uri}: changed since this run read it (another run committed a release, or "
                                  f"took over the refresh); release {entry['id']} is not published; its files are "
                                  f"taken again by the next night")
        return done


def manifest_name(generation: int) -> str:
    """The release manifest written by lease generation ``generation``."""
    return f"_release-g{generation}.json"


def read_release_manifest(store: Storage, releases_root: str, entry: dict) -> dict | None:
    """The manifest of a listed release: the one its entry names (``_release.json`` before generations)."""
    uri = join(releases_root, entry.get("manifest") or f"{entry['id']}/{MANIFEST}")
    if not store.exists(uri):
        return None
    return json.loads(store.read_text(uri))


def write_release_manifest(store: Storage, release_root: str, manifest: dict) -> str:
    """Write ``manifest`` (with its ``generation``) into the release folder; returns its name there."""
    name = manifest_name(manifest["generation"])
    store.write_text(join(release_root, name), json.dumps(manifest, indent=1))
    return name
