"""Keys of the cross-release indexes (``pipeline.core.prior_index``), as pure functions of a document.

- URL key: the first 16 bytes of sha256 of the normalized URL (``udfs.urlnorm``), so a URL index row is 16 bytes
  whatever the URL's length (collisions: ~n**2 / 2**129);
- text key: ``udfs.dochash.text_hash`` (16 bytes), as dedup_exact computes it;
- band keys: ``udfs.minhash`` LSH band keys, as dedup_fuzzy computes them: int64 at 64 bits, 16 bytes (key then
  key2, big-endian: ``band_index_keys``) at 128;
- bucket: which of ``buckets`` index partitions a key lives in (bytes: its first 4 bytes big-endian; a 64-bit
  band key: its high 32 bits), modulo ``buckets``. Spark computes the same buckets in ``prior_index.bucket_expr``.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa


def url_index_key(url_key: str) -> bytes:
    """16 bytes of sha256 of a normalized URL (Spark: ``unhex(substring(sha2(col, 256), 1, 32))``)."""
    return hashlib.sha256(url_key.encode("utf-8", "surrogatepass")).digest()[:16]


def bytes_bucket(key: bytes, buckets: int) -> int:
    return int.from_bytes(key[:4], "big") % buckets


def long_bucket(key: int, buckets: int) -> int:
    return ((key & 0xFFFFFFFFFFFFFFFF) >> 32) % buckets


def long_buckets(keys: np.ndarray, buckets: int) -> np.ndarray:
    """``long_bucket`` of an int64 array of band keys, as int32."""
    return ((keys.view(np.uint64) >> np.uint64(32)) % np.uint64(buckets)).astype(np.int32)


def band_index_keys(keys: np.ndarray) -> pa.Array:
    """Band keys as the band index stores them: (n,) int64 keys as int64; (n, 2) 128-bit keys (key, key2) as
    16 bytes big-endian, whose first 4 bytes are key's high 32 bits, so ``bytes_bucket`` of them is ``long_bucket``
    of key (Spark: ``prior_index.band_key_expr``)."""
    if keys.ndim == 1:
        return pa.array(keys, pa.int64())
    buf = np.ascontiguousarray(keys, dtype=">i8").tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(keys), [None, pa.py_buffer(buf)]).cast(pa.binary())
