"""The one storage layer: plain/file:// paths, s3:// (read/write) and http(s):// (read).

Nothing else in the codebase looks at a URI's scheme. A ``Storage`` is small and picklable, so it
travels into Spark tasks and Ray actors; each process builds its filesystems lazily and caches them.
"""
from __future__ import annotations

import contextlib
import email.utils
import errno
import hashlib
import http.client
import io
import os
import posixpath
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import IO, Iterator

import pyarrow.fs as pafs

from pipeline.core.config import StorageConfig


class StorageError(IOError):
    """An object could not be read or written; the message names the URI and the likely fix."""


class SourceError(StorageError):
    """An input file itself cannot be read: missing (HTTP 404/410, S3 NoSuchKey, no such local file), refused
    (HTTP 403, S3 AccessDenied) or served wrong: that file's failure, not the storage's; per-file stages record it
    as the file's error (a failed input)."""


class TransientStorageError(StorageError):
    """The storage did not serve a request after its retries with backoff (HTTP 5xx/429, S3 SlowDown/InternalError/
    RequestTimeout, timeouts, connection errors, a download that keeps breaking off, local EIO): not the file's
    failure. A task meeting it fails (Spark retries it) and the stage is not committed without the file."""


def scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep else "file"


def join(base: str, *parts: str) -> str:
    """Join path parts onto a URI or path (always with '/')."""
    out = base.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def basename(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/"))


def relative_to(root: str, uri: str) -> str:
    """``uri``'s path below ``root`` ('en/train-00000.parquet'); its file name when ``root`` is the file itself."""
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix):] if uri.startswith(prefix) else basename(uri)


def is_remote(uri: str) -> bool:
    return scheme(uri) != "file"


def _local_path(uri: str) -> str:
    return os.path.abspath(uri[len("file://"):] if uri.startswith("file://") else uri)


READ_BUFFER = 8 << 20  # bytes a stream fetches per request from object storage
_DENIED = ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "AccessDenied", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "EXPIRED_TOKEN", "ExpiredToken", "InvalidToken")
_UNREACHABLE = ("NETWORK_CONNECTION", "Could not connect", "Couldn't connect", "Connection refused",
                "Could not resolve host", "Timeout was reached")
_MISSING = ("NoSuchKey", "NO_SUCH_KEY", "RESOURCE_NOT_FOUND", "HTTP status 404", "HTTP status 410")
_REFUSED = ("ACCESS_DENIED", "AccessDenied", "HTTP status 403")
_SETUP = ("NO_SUCH_BUCKET", "NoSuchBucket") + tuple(d for d in _DENIED if d not in _REFUSED)


def _fault(e: OSError) -> str:
    """What a filesystem or object-store error says about the object: "missing" or "refused" (the object's own
    failure), "setup" (no bucket, bad credentials: every object fails alike), else "transient" (retry later)."""
    msg = str(e)
    if any(s in msg for s in _SETUP):
        return "setup"
    if isinstance(e, FileNotFoundError) or any(s in msg for s in _MISSING):
        return "missing"
    if isinstance(e, (PermissionError, IsADirectoryError, NotADirectoryError)) or any(s in msg for s in _REFUSED):
        return "refused"
    return "transient"


def _backoff(attempt: int) -> None:
    """Sleep before retry ``attempt + 1``: 0.5 s doubling up to 30 s, with jitter."""
    time.sleep(min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))


def hint(e: BaseException) -> str:
    """What to fix, from an object-store error (the message never carries credentials: only their kind)."""
    msg = str(e)
    if "NO_SUCH_BUCKET" in msg or "NoSuchBucket" in msg:
        return " (the bucket does not exist: create it or fix the bucket name)"
    if any(s in msg for s in _DENIED):
        return (" (access denied: check the credentials - AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the "
                "instance role - and the bucket's policy)")
    if any(s in msg for s in _UNREACHABLE):
        return " (cannot reach the object store: check storage.s3_endpoint / AWS_ENDPOINT_URL and the network)"
    if getattr(e, "errno", None) in (errno.ENOSPC, errno.EFBIG):
        return " (disk full or file size limit: free space or choose another output)"
    return ""


def safe_key(name: str) -> str:
    """A path component derived from untrusted text (URL, file name): no separators, no '..'."""
    cleaned = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)
    cleaned = cleaned.lstrip(".") or "_"
    return cleaned[:200]


def under_base(uri: str, base: str) -> bool:
    """``uri`` is ``base`` or below it: same scheme and host (no user info tricks), and a path under the base's
    with no '.' or '..' segment (percent-encoded ones included) that could climb out of it."""
    u, b = urllib.parse.urlsplit(uri), urllib.parse.urlsplit(base)
    if (u.scheme.lower(), u.netloc.lower()) != (b.scheme.lower(), b.netloc.lower()) or not u.netloc:
        return False
    if any(seg in (".", "..") for seg in urllib.parse.unquote(u.path).replace("\\", "/").split("/")):
        return False
    prefix = b.path if b.path.endswith("/") else b.path + "/"
    return u.path == b.path or u.path.startswith(prefix) or (not b.path and u.path.startswith("/"))


def _http_opener(allowed: list[str]) -> urllib.request.OpenerDirector:
    """urllib with redirects followed only to URLs under ``allowed``: an allowed host cannot send us elsewhere."""
    class Guard(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not any(under_base(newurl, b) for b in allowed):  # a 4xx: refused at once, never retried
                raise urllib.error.HTTPError(
                    req.full_url, 403, f"redirect to {newurl} refused: not under an allowed HTTP base URL "
                    f"({', '.join(allowed)}); add its base to storage.http_base_urls if it is trusted", headers, fp)
            return super().redirect_request(req, fp, code, msg, headers, newurl)
    return urllib.request.build_opener(Guard)


@dataclass
class Storage:
    cfg: StorageConfig = field(default_factory=StorageConfig)

    def __post_init__(self) -> None:
        self._fs: dict[str, pafs.FileSystem] = {}

    def __getstate__(self) -> dict:
        return {"cfg": self.cfg}

    def __setstate__(self, state: dict) -> None:
        self.cfg = state["cfg"]
        self._fs = {}

    # ------------------------------------------------------------------ filesystems
    def _endpoint(self) -> str | None:
        return self.cfg.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    def _region(self) -> str:
        return self.cfg.s3_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def _s3(self) -> pafs.FileSystem:
        if "s3" not in self._fs:
            endpoint, region = self._endpoint(), self._region()
            kwargs = dict(region=region,
                          retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=self.cfg.retries),
                          connect_timeout=10, request_timeout=60)
            if endpoint:
                kwargs["endpoint_override"] = endpoint
                if endpoint.startswith("http://"):
                    kwargs["scheme"] = "http"
            self._fs["s3"] = pafs.S3FileSystem(**kwargs)
        return self._fs["s3"]

    def _gcs(self) -> pafs.FileSystem:
        """Google Cloud Storage through pyarrow (JSON API); credentials from the environment unless anonymous."""
        if "gs" not in self._fs:
            import datetime
            kwargs: dict = {"anonymous": self.cfg.gcs_anonymous,
                            "retry_time_limit": datetime.timedelta(seconds=10 * self.cfg.retries)}
            endpoint = self.cfg.gcs_endpoint
            if endpoint:
                scheme_, _, host = endpoint.rpartition("://")
                kwargs["endpoint_override"] = host.rstrip("/")
                kwargs["scheme"] = scheme_ or "https"
            self._fs["gs"] = pafs.GcsFileSystem(**kwargs)
        return self._fs["gs"]

    def resolve(self, uri: str) -> tuple[pafs.FileSystem, str]:
        """(filesystem, path inside it) for a writable/listable URI."""
        s = scheme(uri)
        if s == "file":
            if "local" not in self._fs:
                self._fs["local"] = pafs.LocalFileSystem()
            return self._fs["local"], _local_path(uri)
        if s in ("s3", "s3a"):
            return self._s3(), uri.split("://", 1)[1].rstrip("/")
        if s == "gs":
            return self._gcs(), uri.split("://", 1)[1].rstrip("/")
        if s in ("http", "https"):
            raise StorageError(f"{uri}: HTTP(S) is read-only; write to a path or s3:// URI instead")
        raise StorageError(f"{uri}: unsupported scheme {s!r}; use a local path, file://, s3://, gs:// or https://")

    def _info(self, uri: str, path: str | None = None) -> pafs.FileInfo:
        """``get_file_info`` with object-store errors (credentials, endpoint, bucket) as a StorageError."""
        fs, p = self.resolve(uri)
        try:
            return fs.get_file_info(p if path is None else path)
        except OSError as e:
            cls = TransientStorageError if _fault(e) == "transient" else StorageError
            raise cls(f"{uri}: cannot reach it: {e}{hint(e)}") from None

    def check_http_allowed(self, uri: str) -> None:
        if not any(under_base(uri, b) for b in self.cfg.http_base_urls):
            raise StorageError(f"{uri}: not under an allowed HTTP base URL ({', '.join(self.cfg.http_base_urls)}); "
                               f"add its base to storage.http_base_urls")

    # ------------------------------------------------------------------ reading
    def open_read(self, uri: str, random_access: bool = False) -> IO[bytes]:
        """A binary stream; HTTP streams resume with Range requests after a dropped connection. A missing or
        refused object is a ``SourceError``; a storage that does not answer is retried with backoff
        (``storage.retries`` times), then a ``TransientStorageError``. ``random_access``: a seekable file
        (Parquet footers and row groups are read with ranged requests; over HTTP the whole object is read)."""
        s = scheme(uri)
        if s in ("http", "https"):
            self.check_http_allowed(uri)
            stream = io.BufferedReader(_HttpStream(uri, self.cfg.retries, _http_opener(self.cfg.http_base_urls)),
                                       buffer_size=1 << 20)
            if random_access:
                with stream:
                    return io.BytesIO(stream.read())
            return stream
        fs, path = self.resolve(uri)
        attempt = 0
        while True:
            try:
                if random_access:
                    return fs.open_input_file(path)
                # bytes as stored (.gz is the reader's business), fetched READ_BUFFER bytes a request: readers ask for
                # ~16 KB at a time, which unbuffered is one ranged GET each (~4e9 GETs per Common Crawl snapshot)
                return fs.open_input_stream(path, compression=None, buffer_size=READ_BUFFER)
            except OSError as e:
                fault = _fault(e)
                if fault == "missing":
                    raise SourceError(f"{uri}: no such file") from None
                if fault == "refused":
                    raise SourceError(f"{uri}: cannot open: {e}{hint(e)}") from None
                if fault == "setup":
                    raise StorageError(f"{uri}: cannot open: {e}{hint(e)}") from None
                attempt += 1
                if attempt >= self.cfg.retries:
                    raise TransientStorageError(f"{uri}: the storage did not serve it after {attempt} attempts: "
                                                f"{e}{hint(e)}") from None
            _backoff(attempt - 1)

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as f:
            return f.read()

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def exists(self, uri: str) -> bool:
        if scheme(uri) in ("http", "https"):
            self.check_http_allowed(uri)
            try:
                with _http_opener(self.cfg.http_base_urls).open(urllib.request.Request(uri, method="HEAD"), timeout=30):
                    return True
            except urllib.error.HTTPError:
                return False
            except (urllib.error.URLError, OSError) as e:
                raise TransientStorageError(f"{uri}: cannot reach it: {e}") from None
        return self._info(uri).type != pafs.FileType.NotFound

    def is_dir(self, uri: str) -> bool:
        if scheme(uri) in ("http", "https"):
            return False
        return self._info(uri).type == pafs.FileType.Directory

    def size(self, uri: str) -> int | None:
        if scheme(uri) in ("http", "https"):
            return None
        return self._info(uri).size

    def list_files(self, uri: str, recursive: bool = True, hidden: bool = False) -> list[str]:
        """Every file under a folder/prefix (recursive, or its top level only), as URIs, sorted; hidden (_ or .)
        names skipped unless ``hidden``."""
        return sorted(self.file_sizes(uri, recursive, hidden))

    def file_sizes(self, uri: str, recursive: bool = True, hidden: bool = False) -> dict[str, int]:
        """``list_files`` with each file's size in bytes, from the same listing."""
        fs, path = self.resolve(uri)
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
        except OSError as e:
            raise StorageError(f"{uri}: cannot list: {e}{hint(e)}") from None
        out = {}
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = info.path[len(path):].lstrip("/")
            if not hidden and any(part.startswith(("_", ".")) for part in rel.split("/")):
                continue
            out[join(uri, rel)] = info.size
        return out

    # ------------------------------------------------------------------ writing
    def open_write(self, uri: str) -> IO[bytes]:
        fs, path = self.resolve(uri)
        if scheme(uri) == "file":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            return fs.open_output_stream(path, compression=None)  # bytes as given: never re-compress a .gz
        except OSError as e:
            raise StorageError(f"{uri}: cannot write: {e}{hint(e)}") from None

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a whole object; on local disk via a temporary file and rename, so it appears at once."""
        fs, path = self.resolve(uri)
        try:
            if scheme(uri) == "file":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.tmp-{os.getpid()}-{random.getrandbits(32):08x}"
                try:
                    with open(tmp, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                    _fsync_dir(os.path.dirname(path))  # the rename itself survives a power loss
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                with fs.open_output_stream(path, compression=None) as f:
                    f.write(data)
        except OSError as e:
            raise StorageError(f"{uri}: cannot write: {e}{hint(e)}") from None

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def sync(self, uri: str) -> None:
        """Local disk: flush a written file, or a folder's entries, to the device (a power loss after this keeps
        them). Object stores make an object durable when its upload completes: nothing to do."""
        if scheme(uri) != "file":
            return
        path = _local_path(uri)
        try:
            if os.path.isdir(path):
                _fsync_dir(path)
            elif os.path.exists(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as e:
            raise StorageError(f"{uri}: cannot flush it to disk: {e}") from None

    def delete(self, uri: str) -> None:
        fs, path = self.resolve(uri)
        info = self._info(uri)
        try:
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(path)
            elif info.type == pafs.FileType.File:
                fs.delete_file(path)
        except OSError as e:
            raise StorageError(f"{uri}: cannot delete: {e}{hint(e)}") from None

    # ------------------------------------------------------------------ checks before any work
    def check_writable(self, uri: str, probe: bool = True) -> None:
        """Fail before any work when ``uri`` cannot be written: an unsupported or read-only scheme, a missing
        bucket, credentials the store refuses, a local path under a file or in a folder we may not write.
        With ``probe``, object stores also get a tiny write+delete under ``uri`` (read-only keys fail here)."""
        fs, path = self.resolve(uri)  # refuses http(s) and unknown schemes
        if scheme(uri) == "file":
            p = path
            while not os.path.exists(p) and os.path.dirname(p) != p:
                p = os.path.dirname(p)
            if os.path.exists(path) and not os.path.isdir(path):
                raise StorageError(f"{uri}: is a file, not a folder; choose another output")
            if not os.path.isdir(p):
                raise StorageError(f"{uri}: {p} is a file, not a folder; choose another output")
            if not os.access(p, os.W_OK | os.X_OK):
                raise StorageError(f"{uri}: no permission to write in {p}; choose another output or fix its permissions")
            return
        bucket = path.split("/", 1)[0]
        if not bucket:
            raise StorageError(f"{uri}: no bucket name; use s3://bucket/prefix")
        if self._info(uri, bucket).type == pafs.FileType.NotFound:
            raise StorageError(f"{uri}: bucket {bucket!r} does not exist (or these credentials cannot see it); "
                               f"create it or fix the URI")
        if probe:
            existed = self._info(uri).type != pafs.FileType.NotFound
            marker = join(uri, f"_mdr_write_check-{os.getpid()}-{random.getrandbits(32):08x}")
            self.write_bytes(marker, b"")
            try:
                self.delete(marker)
                if not existed and not fs.get_file_info(pafs.FileSelector(path, recursive=True)):
                    fs.delete_dir(path)  # the folder marker the delete left behind: leave no trace
            except (StorageError, OSError):
                pass  # writable is what matters; a policy without delete leaves an empty hidden object

    def check_readable(self, uri: str, what: str = "input") -> None:
        """Fail before any work when ``uri`` (a file or folder) is not there or cannot be reached."""
        if scheme(uri) in ("http", "https"):
            self.check_http_allowed(uri)
            return
        if scheme(uri) not in ("file", "s3", "s3a", "gs"):
            self.resolve(uri)
        if scheme(uri) != "file":
            bucket = self.resolve(uri)[1].split("/", 1)[0]
            if self._info(uri, bucket).type == pafs.FileType.NotFound:
                raise StorageError(f"{uri}: bucket {bucket!r} does not exist (or these credentials cannot see it); "
                                   f"fix {what}")
        if self._info(uri).type == pafs.FileType.NotFound:
            raise StorageError(f"{uri}: no such file or folder; fix {what}")


    # ------------------------------------------------------------------ conditional writes (leases, commit points)
    def supports_conditional(self, uri: str) -> bool:
        """Whether ``write_if``/``delete_if`` work here: S3 (conditional puts) and local disk (a folder lock)."""
        return scheme(uri) in ("s3", "s3a", "file")

    def check_conditional(self, uri: str) -> None:
        """Once per process and bucket, before a lease relies on them: S3's conditional puts really are
        conditional. A server that ignores If-None-Match / If-Match would make every lease and commit
        last-writer-wins, so it is refused here with a message instead."""
        if scheme(uri) not in ("s3", "s3a"):
            return
        bucket, key = self._bucket_key(uri)
        seen = (self._endpoint(), bucket)
        if seen in _CONDITIONAL_CHECKED:
            return
        probe = f"{scheme(uri)}://{bucket}/{key.rsplit('/', 1)[0] + '/' if '/' in key else ''}" \
                f"_mdr_cas_probe-{os.getpid()}-{random.getrandbits(32):08x}"
        try:
            first = self.write_if(probe, b"1", None)
            again = self.write_if(probe, b"2", None)           # must fail: the object exists
            stale = self.write_if(probe, b"3", '"0123456789abcdef0123456789abcdef"')  # must fail: wrong version
            fresh = self.write_if(probe, b"4", first) if first else None  # must succeed: the right version
        finally:
            try:
                self._boto().delete_object(Bucket=bucket, Key=self._bucket_key(probe)[1])
            except Exception:  # noqa: BLE001 - a probe left behind is harmless
                pass
        if first is None or again is not None or stale is not None or fresh is None:
            ignored = "If-None-Match" if first is None or again is not None else "If-Match"
            raise StorageError(f"{uri}: the S3 server at {self._endpoint() or 'AWS'} ignores conditional writes "
                               f"({ignored}): mdr's leases and manifest commits need them, or two runs could both "
                               f"write one output. Use a store that supports them (AWS S3, MinIO, Ceph RGW, "
                               f"Cloudflare R2 do), or local disk")
        _CONDITIONAL_CHECKED.add(seen)

    def read_versioned(self, uri: str) -> "Versioned | None":
        """The object with its version tag (S3 ETag; a content hash on local disk); None when absent."""
        s = scheme(uri)
        if s in ("s3", "s3a"):
            from botocore.exceptions import BotoCoreError, ClientError
            bucket, key = self._bucket_key(uri)
            try:
                r = self._boto().get_object(Bucket=bucket, Key=key)
                data = r["Body"].read()
            except ClientError as e:
                if _s3_code(e) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise _client_error(uri, "cannot read", e) from None
            except BotoCoreError as e:
                raise _boto_error(uri, e) from None
            date = r["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
            now = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
            return Versioned(data, r["ETag"], r["LastModified"].timestamp(), now)
        path = self._local_cas_path(uri)
        try:
            with open(path, "rb") as f:
                data = f.read()
                modified = os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None
        return Versioned(data, _content_tag(data), modified, time.time())

    def write_if(self, uri: str, data: bytes, etag: str | None) -> str | None:
        """Write the whole object only if it is unchanged: ``etag`` None means it must not exist yet
        (S3 ``If-None-Match: *``), else it must still have that version (``If-Match``). Returns the new
        version tag, or None when the condition failed (someone else wrote it first)."""
        s = scheme(uri)
        if s in ("s3", "s3a"):
            from botocore.exceptions import BotoCoreError, ClientError
            bucket, key = self._bucket_key(uri)
            cond = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
            try:
                return self._boto().put_object(Bucket=bucket, Key=key, Body=data, **cond)["ETag"]
            except ClientError as e:
                if _s3_code(e) not in _S3_CONDITION_FAILED:
                    raise _client_error(uri, "cannot write", e) from None
            except BotoCoreError as e:
                raise _boto_error(uri, e) from None
            cur = self.read_versioned(uri)  # a retried request whose first attempt did succeed reads back as ours
            return cur.etag if cur is not None and cur.data == data else None
        path = self._local_cas_path(uri)
        with _local_lock(path):
            cur = self.read_versioned(uri)
            if (cur is None) != (etag is None) or (cur is not None and cur.etag != etag):
                return None
            self.write_bytes(uri, data)
        return _content_tag(data)

    def delete_if(self, uri: str, etag: str) -> bool:
        """Delete the object only if it still has version ``etag``; False when it changed or is gone."""
        s = scheme(uri)
        if s in ("s3", "s3a"):
            from botocore.exceptions import BotoCoreError, ClientError
            bucket, key = self._bucket_key(uri)
            try:
                self._boto().delete_object(Bucket=bucket, Key=key, IfMatch=etag)
                return True
            except ClientError as e:
                if _s3_code(e) in _S3_CONDITION_FAILED:
                    return False
                raise _client_error(uri, "cannot delete", e) from None
            except BotoCoreError as e:
                raise _boto_error(uri, e) from None
        path = self._local_cas_path(uri)
        with _local_lock(path):
            cur = self.read_versioned(uri)
            if cur is None or cur.etag != etag:
                return False
            os.unlink(path)
        return True

    def _bucket_key(self, uri: str) -> tuple[str, str]:
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        return bucket, key

    def _local_cas_path(self, uri: str) -> str:
        if scheme(uri) == "gs":
            raise StorageError(f"{uri}: mdr refresh keeps its ledger and lock with conditional writes, which mdr does "
                               f"through S3's API only; on Google Cloud Storage use its S3-compatible API for the "
                               f"state root (s3://bucket/prefix with storage.s3_endpoint=https://storage.googleapis.com "
                               f"and HMAC keys)")
        if scheme(uri) != "file":
            raise StorageError(f"{uri}: conditional writes need s3:// or a local path (HTTP(S) is read-only)")
        return _local_path(uri)

    def _boto(self):
        """A boto3 S3 client (pyarrow has no conditional puts), configured like the pyarrow filesystem."""
        if "boto3" not in self._fs:
            import boto3
            from botocore.config import Config as BotoConfig
            self._fs["boto3"] = boto3.client(
                "s3", endpoint_url=self._endpoint(), region_name=self._region(),
                config=BotoConfig(retries={"max_attempts": self.cfg.retries, "mode": "standard"},
                                  connect_timeout=10, read_timeout=60))
        return self._fs["boto3"]


_CONDITIONAL_CHECKED: set[tuple] = set()  # (endpoint, bucket) pairs whose conditional writes were probed


@dataclass(frozen=True)
class Versioned:
    """An object read together with its version, for a later conditional write."""
    data: bytes
    etag: str
    modified: float   # when it was last written (the S3 server's clock)
    now: float        # the storage's clock when it was read (the S3 response's Date), for expiry checks


_S3_CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")
_S3_TRANSIENT = ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                 "ServiceUnavailable", "500", "502", "503", "504")


def _client_error(uri: str, what: str, e) -> StorageError:
    """An S3 error answer (after boto's retries): throttling and server errors are transient."""
    cls = TransientStorageError if _s3_code(e) in _S3_TRANSIENT else StorageError
    return cls(f"{uri}: {what}: {e}{hint(e)}")


def _boto_error(uri: str, e: BaseException) -> StorageError:
    """No credentials, endpoint unreachable or timed out (transient), ...: a StorageError naming the fix."""
    import botocore.exceptions as bx
    fix = (" (no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)"
           if type(e).__name__ == "NoCredentialsError" else hint(e))
    cls = TransientStorageError if isinstance(e, (bx.ConnectionError, bx.HTTPClientError)) else StorageError
    return cls(f"{uri}: cannot reach it: {e}{fix}")


def _s3_code(e) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _content_tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _local_lock(path: str):
    """An exclusive lock for compare-and-swap on a local file: a lock on its folder (no lock file left behind)."""
    import fcntl
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise StorageError(f"{path}: cannot lock its folder: {e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:  # a file system without flock on folders (NFS): say so
            raise StorageError(f"{path}: cannot lock its folder for a conditional write ({e}); use a local disk "
                               f"or s3:// for outputs and state roots") from None
        yield
    finally:
        os.close(fd)  # releases the lock


class _HttpStream(io.RawIOBase):
    """Read-only HTTP body that reconnects with a Range header and backoff when the stream breaks.

    A body that ends before its Content-Length is a dropped connection, not the end of the file: the stream
    resumes from where it stopped. A 4xx (404, 403, 410) is a ``SourceError`` at once; 5xx, 429, connection
    errors and a server that keeps cutting the body are retried, then a ``TransientStorageError``."""

    def __init__(self, uri: str, retries: int, opener: urllib.request.OpenerDirector | None = None) -> None:
        self.uri, self.retries, self.pos = uri, retries, 0
        self._opener = opener or urllib.request.build_opener()
        self.length: int | None = None  # total bytes, from Content-Length / Content-Range
        self._resp = None
        self._open()

    def _open(self) -> None:
        last: Exception | None = None
        for attempt in range(self.retries):
            headers = {"User-Agent": "mdr/0.1 (+https://github.com/mdr)"}
            if self.pos:
                headers["Range"] = f"bytes={self.pos}-"
            try:
                self._resp = self._opener.open(urllib.request.Request(self.uri, headers=headers), timeout=60)
                if self.pos and self._resp.status != 206:
                    raise SourceError(f"{self.uri}: server ignored the Range request; cannot resume")
                self._learn_length()
                return
            except urllib.error.HTTPError as e:
                last = e
                if e.code < 500 and e.code != 429:
                    raise SourceError(f"{self.uri}: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                if isinstance(e, SourceError):
                    raise
                last = e
            _backoff(attempt)
        raise TransientStorageError(f"{self.uri}: failed after {self.retries} attempts: {last}")

    def _learn_length(self) -> None:
        if self.length is not None:
            return
        rng = self._resp.headers.get("Content-Range", "")
        if "/" in rng and rng.rsplit("/", 1)[1].strip().isdigit():
            self.length = int(rng.rsplit("/", 1)[1])
        elif self._resp.headers.get("Content-Length", "").isdigit() and not self.pos:
            self.length = int(self._resp.headers["Content-Length"])

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        for attempt in range(self.retries):
            try:
                n = self._resp.readinto(b)
            except (OSError, urllib.error.URLError, http.client.HTTPException):
                n = None
            if n is not None and (n or not len(b) or self.length is None or self.pos >= self.length):
                self.pos += n
                return n  # data, or the real end of the body
            _backoff(attempt)
            self._resp.close()
            self._open()
        raise TransientStorageError(f"{self.uri}: the download kept breaking off at byte {self.pos:,}"
                                    + (f" of {self.length:,}" if self.length is not None else ""))

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
        super().close()


def iter_lines(store: Storage, uri: str) -> Iterator[str]:
    """Lines of a (possibly .gz) text object, e.g. a Common Crawl warc.paths.gz listing."""
    import gzip
    data = store.read_bytes(uri)
    if uri.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line
