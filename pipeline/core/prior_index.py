"""Cross-release indexes: what earlier releases hold, so that a new release adds no duplicate of them.

Three indexes, one row per released document and key (Parquet: ``key``, ``id``, ``release``):

- ``url``: the first 16 bytes of sha256 of the normalized URL (``udfs.urlnorm`` with the dedup_exact URL options);
- ``doc``: the 16-byte text hash of dedup_exact (``udfs.dochash``);
- ``band``: every MinHash LSH band key of dedup_fuzzy (``udfs.minhash``, the same parameters): int64, or 16 bytes
  for 128-bit keys (``dedup_fuzzy.key_bits``; ``udfs.prior_keys.band_index_keys``).

A released document's keys are made from the text each stage looked up, not the released text (dedup_exact
cuts repeated spans after its lookups): URL and text hash from dedup_exact's input, bands from dedup_fuzzy's.

Each index is split by key hash into ``buckets``; a bucket is a few levels of files sorted by key
(``pipeline.refresh.prior_build`` compacts them; int64 keys sort as signed integers, 16-byte keys unsigned byte by byte,
as Parquet's statistics compare them). A *catalog* (``<index root>/_catalogs/<release>-g<N>.json``, N the lease
generation that wrote it) lists every live file per index and bucket, with the parameters the keys were made
with. A catalog is live only once ``releases/_index.json`` names it (``pipeline.refresh.releases``, the
refresh's one commit point), so files written by a night that did not commit are never read. A stage given a
catalog (``dedup_fuzzy.prior_index``, ``dedup_exact.prior_index``) looks its keys up one Spark task per bucket
(``prior_matches``): of that bucket's files, only those whose [min, max] key range (in the catalog) holds one of
its keys are opened, and of them only the row groups (``prior_build.ROW_GROUP_ROWS`` rows) whose key statistics
hold one: a night's read is bounded by its number of keys times a row group per level, not by the history. With
hashed keys that saves reading only while the night's keys are fewer than the index's row groups (a small
CC-NEWS night against a long history); a night as large as the history reads it all, one task per bucket.
Building and extending the indexes is ``pipeline.refresh.prior_build``.
"""
from __future__ import annotations

import bisect
import json
import struct
from dataclasses import dataclass, fields

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.config import Config, ConfigError
from pipeline.core.storage import Storage, StorageError, join
from udfs.prior_keys import bytes_bucket, long_bucket, url_index_key  # noqa: F401  (the keys, re-exported)

FORMAT = "mdr.prior-index/1"
KINDS = ("url", "doc", "band")
CATALOGS = "_catalogs"
KEY_TYPES = {"url": pa.binary(), "doc": pa.binary(), "band": pa.int64()}


def key_type(kind: str, key_bits: int = 64) -> pa.DataType:
    """A key's Arrow type: 128-bit band keys are 16 bytes like URL and text keys."""
    return pa.binary() if kind == "band" and key_bits == 128 else KEY_TYPES[kind]


def file_schema(kind: str, key_bits: int = 64) -> pa.Schema:
    return pa.schema([("key", key_type(kind, key_bits)), ("id", pa.string()), ("release", pa.string())])


# --------------------------------------------------------------------------- keys (udfs.prior_keys)

def index_params(cfg: Config) -> dict:
    """What the keys depend on: a catalog built with other values cannot be compared with this config's keys."""
    mh, ex = cfg.dedup_fuzzy.params(), cfg.dedup_exact
    return {"minhash": {"name": mh.name, "seed": mh.seed, **({"key_bits": mh.key_bits} if mh.key_bits != 64 else {})},
            "url": {"ignore_scheme": ex.url_ignore_scheme, "strip_www": ex.url_strip_www,
                    "drop_params": sorted(ex.url_drop_params)},
            "doc": {"casefold": ex.doc_casefold},
            "keys": "url=sha256[:16] doc=blake2b-128 band=int64"}


# --------------------------------------------------------------------------- catalogs

@dataclass
class Catalog:
    uri: str
    data: dict

    @classmethod
    def load(cls, store: Storage, uri: str) -> "Catalog":
        try:
            data = json.loads(store.read_text(uri))
        except json.JSONDecodeError as e:
            raise StorageError(f"{uri}: prior-index catalog is not valid JSON ({e})") from None
        if data.get("format") != FORMAT:
            raise StorageError(f"{uri}: not an mdr prior-index catalog (format {data.get('format')!r})")
        return cls(uri, data)

    @property
    def root(self) -> str:
        return self.uri.rsplit(f"/{CATALOGS}/", 1)[0]

    @property
    def buckets(self) -> int:
        return int(self.data["buckets"])

    @property
    def band_key_bits(self) -> int:
        return int(self.data.get("params", {}).get("minhash", {}).get("key_bits", 64))

    @property
    def releases(self) -> list[str]:
        return list(self.data.get("releases", []))

    def entries(self, kind: str) -> dict[str, list[dict]]:
        return self.data.get("files", {}).get(kind, {})

    def files(self, kind: str, buckets=None) -> list[str]:
        """Absolute URIs of the live files of ``kind``, only of the given buckets when given."""
        by_bucket = self.entries(kind)
        wanted = by_bucket.keys() if buckets is None else [str(b) for b in sorted(buckets)]
        return [join(self.root, f["path"]) for b in wanted for f in by_bucket.get(b, [])]

    def paths(self) -> set[str]:
        return {f["path"] for kind in KINDS for fs in self.entries(kind).values() for f in fs}


def check_params(catalog: Catalog, cfg: Config, parts: tuple[str, ...] = ("minhash", "url", "doc")) -> None:
    """A catalog made with other MinHash / URL / text-hash settings: fail, naming both and the fix."""
    now, then = index_params(cfg), catalog.data.get("params", {})
    for part in parts:
        if then.get(part) != now[part]:
            keys = {"minhash": "dedup_fuzzy.preset/num_hashes/bands/rows/ngram/seed/key_bits",
                    "url": "dedup_exact.url_ignore_scheme/url_strip_www/url_drop_params",
                    "doc": "dedup_exact.doc_casefold"}[part]
            raise ConfigError(f"{keys}: the cross-release index {catalog.uri} was built with {part} "
                              f"{json.dumps(then.get(part), sort_keys=True)}, this configuration gives "
                              f"{json.dumps(now[part], sort_keys=True)}; keys made with other settings cannot be "
                              f"compared. Set them back, or start a new refresh state root")


def load_checked(store: Storage, uri: str, cfg: Config, parts: tuple[str, ...]) -> Catalog:
    cat = Catalog.load(store, uri)
    check_params(cat, cfg, parts)
    return cat


# --------------------------------------------------------------------------- reading index files

def key_to_json(key) -> int | str:
    """A key as a catalog records it (a file's ``min`` / ``max``): int64 keys (64-bit band keys) as integers,
    bytes (URL and text keys, 128-bit band keys) as hex."""
    return key if isinstance(key, int) else bytes(key).hex()


def key_from_json(value) -> int | bytes:
    """The key ``key_to_json`` recorded; it compares as the files are sorted: integers signed (Parquet INT64
    statistics), bytes unsigned byte by byte (Parquet BYTE_ARRAY statistics, Arrow's sort)."""
    return value if isinstance(value, int) else bytes.fromhex(value)


def match_schema(kind: str, key_bits: int = 64) -> pa.Schema:
    """What a lookup returns: (key, prior_id, prior_release)."""
    return pa.schema([("key", key_type(kind, key_bits)), ("prior_id", pa.string()), ("prior_release", pa.string())])


@dataclass
class ReadStats:
    """What reading the index cost: files opened, row groups and rows read, bytes fetched from storage."""
    files: int = 0
    row_groups: int = 0
    rows: int = 0
    bytes: int = 0

    def add(self, other: "ReadStats") -> "ReadStats":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class _Metered:
    """A seekable file that counts the bytes read through it."""

    def __init__(self, f) -> None:
        self.f, self.bytes = f, 0

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.bytes += len(b)
        return b

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def tell(self) -> int:
        return self.f.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self.f.closed

    def close(self) -> None:
        self.f.close()


def open_index_file(store: Storage, uri: str) -> tuple[pq.ParquetFile, _Metered]:
    """An index file opened for ranged reads: its footer is fetched exactly (Parquet's reader would fetch the
    last 64 KiB), then only the row groups asked for. The second value counts the bytes fetched."""
    f = _Metered(store.open_read(uri, random_access=True))
    size = f.seek(0, 2)
    f.seek(size - 8)
    tail = f.read(8)
    if tail[4:] != b"PAR1":
        f.close()
        raise StorageError(f"{uri}: not a Parquet file (a damaged cross-release index file)")
    length = struct.unpack("<i", tail[:4])[0]
    f.seek(size - 8 - length)
    meta = pq.read_metadata(pa.BufferReader(b"PAR1" + f.read(length) + tail))
    return pq.ParquetFile(f, metadata=meta, pre_buffer=False), f   # no coalescing: only the row groups asked for


def lookup_bucket(store: Storage, root: str, entries: list[dict], kind: str, keys,
                  key_bits: int = 64) -> tuple[pa.Table, ReadStats]:
    """The rows (key, prior_id, prior_release) of one bucket's files whose key is one of ``keys``. A file is opened
    only when one of the keys lies in its [min, max] (the catalog's), and of it only the row groups whose key
    statistics hold one of them are read, their key column first and the rest only where a key matched: each key
    costs at most one row group per file whose range holds it. ``key_bits``: the band keys' (the catalog's)."""
    want = sorted(set(k for k in (keys.to_pylist() if hasattr(keys, "to_pylist") else keys) if k is not None))
    out_schema, ktype = match_schema(kind, key_bits), key_type(kind, key_bits)
    stats, parts, wanted = ReadStats(), [], pa.array(want, ktype)

    def holds(lo, hi) -> bool:
        i = bisect.bisect_left(want, lo)
        return i < len(want) and want[i] <= hi

    for e in entries if want else []:
        if "min" in e and not holds(key_from_json(e["min"]), key_from_json(e["max"])):
            continue
        pf, f = open_index_file(store, join(root, e["path"]))
        try:
            md, groups = pf.metadata, []
            for g in range(md.num_row_groups):
                st = md.row_group(g).column(0).statistics
                if st is None or not st.has_min_max or holds(st.min, st.max):
                    groups.append(g)
            stats.files += 1
            for g in groups:   # the key column first; ids only of a row group holding a match
                k = pf.read_row_group(g, columns=["key"]).column("key").cast(ktype)
                stats.row_groups += 1
                stats.rows += len(k)
                hit = pc.is_in(k, wanted)
                if pc.any(hit).as_py():
                    rest = pf.read_row_group(g, columns=["id", "release"])
                    t = pa.table([k, rest.column("id").cast(pa.string()), rest.column("release").cast(pa.string())],
                                 schema=out_schema)
                    parts.append(t.filter(hit))
        finally:
            stats.bytes += f.bytes
            f.close()
    return (pa.concat_tables(parts) if parts else out_schema.empty_table()), stats


# --------------------------------------------------------------------------- lookups in Spark

def band_key_expr(key: str, key2: str):
    """A 128-bit band key's two long columns as the index's 16 bytes (``udfs.prior_keys.band_index_keys``)."""
    from pyspark.sql import functions as F
    return F.concat(*[F.unhex(F.lpad(F.hex(F.col(c)), 16, "0")) for c in (key, key2)])


def bucket_expr(col, kind: str, buckets: int, key_bits: int = 64):
    """The bucket of a key column, as ``bytes_bucket`` / ``long_bucket`` compute it."""
    from pyspark.sql import functions as F
    if kind == "band" and key_bits == 64:
        return F.pmod(F.shiftrightunsigned(col, 32), F.lit(buckets))
    return F.pmod(F.conv(F.hex(F.substring(col, 1, 4)), 16, 10).cast("long"), F.lit(buckets))


def prior_matches(keys, catalog: Catalog, store: Storage, kind: str):
    """(key, prior_id, prior_release) for the keys of ``keys`` (a DataFrame with a ``key`` column) that an earlier
    release holds: the earliest release, then the smallest id. One task per bucket the keys fall in reads, of that
    bucket's files, only the row groups holding one of its keys (``lookup_bucket``): nothing is collected."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema
    entries, root, bits = catalog.entries(kind), catalog.root, catalog.band_key_bits

    def lookup(table: pa.Table) -> pa.Table:
        bucket = table.column("b")[0].as_py()
        found, _ = lookup_bucket(store, root, entries.get(str(bucket), []), kind, table.column("key"), bits)
        return found

    found = (keys.select("key").where(F.col("key").isNotNull()).distinct()
             .withColumn("b", bucket_expr(F.col("key"), kind, catalog.buckets, bits))
             .groupBy("b").applyInArrow(lookup, from_arrow_schema(match_schema(kind, bits))))
    first = F.min(F.struct("prior_release", "prior_id")).alias("p")
    return (found.groupBy("key").agg(first)
            .select("key", F.col("p.prior_id").alias("prior_id"), F.col("p.prior_release").alias("prior_release")))


def mark_exact(df, catalog: Catalog, store: Storage, *, kind: str, key_expr, reason: str, live: str,
               reason_col: str, details_col: str, extra: dict | None = None):
    """Among rows still ``live``, those whose key an earlier release holds get ``reason`` and
    ``{"duplicate_of": <its id>, "prior_release": <its release>, ...extra}``."""
    from pyspark.sql import functions as F
    df = df.withColumn("_pk", key_expr)
    keys = df.where(F.col(live) & F.col("_pk").isNotNull()).select(F.col("_pk").alias("key"))
    found = prior_matches(keys, catalog, store, kind).withColumnRenamed("key", "_pk")
    df = df.join(found, "_pk", "left")
    hit = F.col(live) & F.col("prior_id").isNotNull()
    info = F.to_json(F.struct(F.col("prior_id").alias("duplicate_of"), F.col("prior_release").alias("prior_release"),
                              *[c.alias(n) for n, c in (extra or {}).items()]))
    return (df.withColumn(reason_col, F.when(hit, F.lit(reason)).otherwise(F.col(reason_col)))
              .withColumn(details_col, F.when(hit, info).otherwise(F.col(details_col)))
              .withColumn(live, F.col(reason_col).isNull())
              .drop("_pk", "prior_id", "prior_release"))


def fuzzy_prior(bands, labels, attrs, removed, catalog: Catalog, store: Storage, *, node: str, reason: str):
    """Near duplicates of earlier releases, with their whole cluster.

    A document sharing a band key with a released one is *tainted*; every member of a tainted component of this
    night's graph is removed with ``reason`` and ``duplicate_of`` the released document (the earliest release's,
    then the smallest id): the same outcome as clustering everything together with the released copy kept,
    since a release is never changed. ``removed`` (part, id, duplicate_of, component_size, reason,
    prior_release) loses those documents' in-night decisions and gets these. Returns (removed, tainted count)."""
    from pyspark.sql import functions as F
    if "key2" in bands.columns:   # 128-bit keys: the index's 16 bytes
        bands = bands.select(band_key_expr("key", "key2").alias("key"), node)
    found = prior_matches(bands.select("key"), catalog, store, "band")
    first = F.min(F.struct("prior_release", "prior_id")).alias("p")
    tainted = bands.join(found, "key").groupBy(node).agg(first)
    n_tainted = tainted.count()
    if not n_tainted:
        return removed, 0
    comp = (tainted.join(labels, node, "left").select(F.coalesce(F.col("root"), F.col(node)).alias("root"), "p")
            .groupBy("root").agg(F.min("p").alias("p")))
    members = labels.select(node, "root").unionByName(
        tainted.join(labels, node, "left_anti").select(node, F.col(node).alias("root")))
    sizes = members.groupBy("root").agg(F.count("*").alias("component_size"))
    hit = (members.join(comp, "root").join(sizes, "root").join(attrs.select(node, "part", "id"), node)
           .select("part", "id", F.col("p.prior_id").alias("duplicate_of"), "component_size",
                   F.lit(reason).alias("reason"), F.col("p.prior_release").alias("prior_release")))
    kept_decisions = removed.join(hit.select("part", "id"), ["part", "id"], "left_anti")
    return kept_decisions.unionByName(hit), n_tainted
