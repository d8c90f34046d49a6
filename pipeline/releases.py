"""Releases of `mdr refresh`: ``<state>/releases/<id>/`` each, listed by ``<state>/releases/_index.json``.

A release folder is a run root (``<stage>/`` datasets, ``report.html``, ``README.md``) plus ``_release.json``, its
manifest (files, counts, prior releases it was deduplicated against, the index catalog it adds). It exists for
readers only once ``_index.json`` lists it: that file is replaced in one conditional write (``If-Match`` on the
ETag read at the start of the commit, ``If-None-Match: *`` for the first release), the refresh's one commit
point. Readers read ``_index.json``, then the datasets it names; a folder it does not list is an unfinished night.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pipeline.storage import Storage, StorageError, join

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

    def commit(self, store: Storage, entry: dict, catalog: str) -> "ReleaseIndex":
        """List a new release (and make its catalog the live one) in one conditional write."""
        data = {"format": FORMAT, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "latest": entry["id"], "catalog": catalog,
                "releases": sorted(self.releases + [entry], key=lambda r: r["id"])}
        tag = store.write_if(self.uri, json.dumps(data, indent=1).encode(), self.etag)
        if tag is None:
            raise ReleaseConflict(f"{self.uri}: changed since this run read it (another run committed a release); "
                                  f"release {entry['id']} is not published; its files are taken again by the next "
                                  f"night")
        return ReleaseIndex(self.uri, data, tag)


def read_release_manifest(store: Storage, release_root: str) -> dict | None:
    uri = join(release_root, MANIFEST)
    if not store.exists(uri):
        return None
    return json.loads(store.read_text(uri))


def write_release_manifest(store: Storage, release_root: str, manifest: dict) -> None:
    store.write_text(join(release_root, MANIFEST), json.dumps(manifest, indent=1))
