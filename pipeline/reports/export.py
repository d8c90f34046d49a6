"""`mdr export`: a stage's kept documents as JSONL.gz shards in the dolma / datatrove document layout.

One shard per committed part, ``OUT/documents/NNNNN.jsonl.gz``, one JSON object a line:
``{"id", "text", "source", "added", "created", "metadata": {every other column}}``: dolma's
document fields (``created`` is the crawl date), which datatrove's ``JsonlReader`` also reads
(``id`` and ``text``; the rest lands in its ``metadata``). Parts are streamed a row group at a
time (``iter_part``), so memory stays bounded; ``OUT/_export.json`` is written last and lists the shards.
"""
from __future__ import annotations

import gzip
import io
import json
import sys
import time

from pipeline.core.dataset import iter_part, open_input
from pipeline.core.storage import Storage, StorageError, join
from pipeline.reports.data import committed_stages

SOURCE = "mdr"
TOP_LEVEL = ("id", "text")


def document(row: dict, source: str, added: str) -> dict:
    meta = {k: v for k, v in row.items() if k not in TOP_LEVEL}
    return {"id": row["id"], "text": row["text"], "source": source, "added": added,
            "created": row.get("warc_date") or added, "metadata": meta}


def export_jsonl(store: Storage, root: str, output: str, stage: str | None = None, source: str = SOURCE) -> dict:
    """Write every kept document of ``stage`` (default: the run's last stage) under ``output``."""
    stages = dict(committed_stages(store, root))
    if not stages:
        raise StorageError(f"{root}: no committed stage output; run `mdr run` first")
    stage = stage or list(stages)[-1]
    if stage not in stages:
        raise StorageError(f"{root}: stage {stage!r} has no committed output; committed: {', '.join(stages)}")
    man = stages[stage]
    parts = open_input(store, join(root, stage)).parts
    added = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    shards, total = [], 0
    for i, uri in enumerate(parts):
        rel = f"documents/{i:05d}.jsonl.gz"
        n = 0
        with store.open_write(join(output, rel)) as sink:
            with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6) as gz:
                out = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
                for batch in iter_part(store, uri):
                    for row in batch.to_pylist():
                        out.write(json.dumps(document(row, source, added), ensure_ascii=False, default=str))
                        out.write("\n")
                        n += 1
                out.flush()
                out.detach()
        shards.append({"path": rel, "rows": n, "from": uri})
        total += n
        print(f"[export] {rel}: {n:,} documents", file=sys.stderr)
    if total != man["rows"]:
        raise StorageError(f"export of {stage}: wrote {total:,} documents but the manifest lists {man['rows']:,}")
    summary = {"format": "mdr.export/1", "layout": "dolma/datatrove jsonl.gz", "root": root, "stage": stage,
               "config_hash": man["config_hash"], "source": source, "added": added, "rows": total, "shards": shards}
    store.write_text(join(output, "_export.json"), json.dumps(summary, indent=1))
    return summary
