"""`mdr explain ROOT URL_OR_ID`: which stage kept or removed a document, why, and the scores behind it.

A point lookup, not a report: it streams each stage's reject and kept parts a row group at a time
(``iter_part``), keeping only the matching rows, and stops at the stage that removed the document.
For a duplicate it also reads the kept copy from the stage's input and
measures how similar the two texts are: exact word n-gram Jaccard and, for MinHash stages, the share
of equal signature minima (what LSH saw).
"""
from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.dataset import iter_part, open_input
from pipeline.core.storage import Storage, StorageError, join
from pipeline.reports.data import committed_stages

HEAD_CHARS = 400
MINHASH_NAME = re.compile(r"(\d+)ng_(\d+)b_(\d+)r_(\d+)h(?:_(\d+)bit)?")
LONG_COLUMNS = ("text",)


def lookup(store: Storage, uris: list[str], ids: list[str] | None = None, url: str | None = None) -> list[dict]:
    """Rows of the given part files whose id is in ``ids`` or whose url equals ``url``."""
    ids = [i for i in (ids or []) if i]
    if not ids and url is None:
        return []
    rows: list[dict] = []
    wanted = pa.array(ids, pa.string())
    for uri in uris:
        try:
            for t in iter_part(store, uri):
                mask = pc.is_in(t.column("id"), wanted) if ids else None
                if url is not None:
                    by_url = pc.fill_null(pc.equal(t.column("url"), url), False)
                    mask = by_url if mask is None else pc.or_(mask, by_url)
                rows += t.filter(mask).to_pylist()
        except (OSError, pa.ArrowInvalid) as e:
            raise StorageError(f"{uri}: cannot read: {e}") from None
    return rows


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# scores whose limit is not called min_/max_<score> in the stage's params (the Gopher filters' and dedup_exact's names)
SCORE_ALIASES = {"n_words": "words", "hash_ratio": "symbol_word_ratio", "ellipsis_ratio": "symbol_word_ratio",
                 "line_removed_words_share": "removed_words_share", "chars_left": "chars_after_cut",
                 "tokens_left": "tokens_after_cut"}
NGRAM_SCORE = re.compile(r"(top|dup)_(\d+)_gram_char_frac")


def _limit_names(key: str) -> list[str]:
    """Param names (dotted suffixes) that may hold a limit on score ``key``."""
    base = SCORE_ALIASES.get(key, key)
    names = [f"min_{base}", f"max_{base}"]
    m = NGRAM_SCORE.fullmatch(key)
    if m:
        names.append(f"max_{m.group(1)}_ngram_char_frac.{m.group(2)}")
    return names


def limits(details: dict, params: dict) -> list[dict]:
    """Each numeric score in ``details`` beside the configured limit on it (``min_<score>``/``max_<score>``);
    a filter reject is held to its language's rules (the filter's ``languages`` overrides over its sections)."""
    if isinstance(params.get("languages"), dict):
        over = params["languages"].get(details.get("lang")) or {}
        params = {k: v for k, v in params.items() if k not in ("languages", "rules_by_language")}
        for section in ("repetition", "quality", "lines"):
            if isinstance(params.get(section), dict) and over.get(section):
                params[section] = {**params[section], **over[section]}
    flat = _flat(params)
    out = []
    for key, value in details.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        for name in _limit_names(key):
            for pkey, limit in flat.items():
                if not (pkey == name or pkey.endswith("." + name)):
                    continue
                if not isinstance(limit, (int, float)) or isinstance(limit, bool):
                    continue
                kind = name[:3]
                failed = value < limit if kind == "min" else value > limit
                out.append({"score": key, "value": value, "limit": limit, "kind": kind, "param": pkey,
                            "failed": bool(failed)})
    if "threshold" in details and isinstance(details.get("threshold"), (int, float)):
        for key, value in details.items():
            if key.endswith("score") and isinstance(value, (int, float)):
                out.append({"score": key, "value": value, "limit": details["threshold"], "kind": "min",
                            "param": "threshold", "failed": value < details["threshold"]})
    return out


def similarity(a: str, b: str, minhash_name: str | None, seed: int = 1) -> dict:
    """How alike two texts are: exact n-gram Jaccard, and the MinHash estimate under the stage's parameters."""
    from udfs.minhash import jaccard, minhasher, resolve_params, shingles
    m = MINHASH_NAME.fullmatch(minhash_name or "")
    ngram = int(m.group(1)) if m else 5
    out = {"identical": a == b, "ngram": ngram, "jaccard": round(jaccard(a, b, ngram), 4)}
    if m:
        params = resolve_params("custom", num_hashes=int(m.group(4)), bands=int(m.group(2)), rows=int(m.group(3)),
                                ngram=ngram, seed=seed, key_bits=int(m.group(5) or 64))
        mh = minhasher(params)
        sa, sb = shingles(a, ngram, seed), shingles(b, ngram, seed)
        if sa.size and sb.size:
            out["minhash_estimate"] = round(float((mh.signature(sa) == mh.signature(sb)).mean()), 4)
            out["minhash"] = params.name
    return out


def _columns(row: dict) -> dict:
    """The short columns of a kept row (scores, lengths, language), not the text."""
    return {k: v for k, v in row.items() if k not in LONG_COLUMNS and (v is None or isinstance(v, (int, float, str)))
            and not (isinstance(v, str) and len(v) > 200)}


def _head(text: str | None) -> str | None:
    return text[:HEAD_CHARS] if text else None


def _duplicate(store: Storage, stage: str, man: dict, doc_id: str, dup_id: str, text: str | None) -> dict:
    """The kept copy and how similar the two texts are, both read from the stage's input."""
    info: dict = {"duplicate_of": dup_id}
    try:
        inp = open_input(store, man["input"]["uri"])
        rows = {r["id"]: r for r in lookup(store, inp.parts, ids=[doc_id, dup_id])}
    except (StorageError, KeyError) as e:
        info["error"] = f"could not read the stage's input: {e}"
        return info
    keeper = rows.get(dup_id)
    mine = rows.get(doc_id, {}).get("text") or text
    if keeper is None:
        info["error"] = f"{dup_id} is not in the input of {stage}"
        return info
    info.update({"url": keeper.get("url"), "text_head": _head(keeper.get("text"))})
    if mine is not None and keeper.get("text") is not None:
        stats = man.get("stats", {})
        name = stats.get("minhash") or man.get("params", {}).get("minhash")
        info["similarity"] = similarity(mine, keeper["text"], name, int(man.get("params", {}).get("seed", 1)))
    return info


def trace(store: Storage, root: str, stages: list[tuple[str, dict]], doc_id: str) -> dict:
    """The document's path through the stages: kept by each, until one removed it."""
    steps, last_kept, url = [], None, None
    for name, man in stages:
        out = join(root, name)
        rej = lookup(store, [join(out, p["path"]) for p in man.get("rejects", [])], ids=[doc_id])
        if rej:
            r = rej[0]
            details = json.loads(r["details"]) if r["details"] else {}
            text = r.get("text") or (last_kept or {}).get("text")
            step = {"stage": name, "outcome": "removed", "reason": r["reason"], "details": details,
                    "limits": limits(details, man.get("params", {})), "text_head": _head(text)}
            if details.get("duplicate_of"):
                step["duplicate"] = _duplicate(store, name, man, doc_id, details["duplicate_of"], text)
            steps.append(step)
            url = url or r.get("url")
            return {"id": doc_id, "url": url, "outcome": "removed", "stage": name, "reason": r["reason"],
                    "steps": steps}
        kept = lookup(store, [join(out, p["path"]) for p in man.get("parts", [])], ids=[doc_id])
        if kept:
            row = kept[0]
            url = url or row.get("url")
            step = {"stage": name, "outcome": "kept", "columns": _columns(row)}
            if last_kept is not None and last_kept.get("text") != row.get("text"):
                before, after = len(last_kept.get("text") or ""), len(row.get("text") or "")
                step["text_changed"] = {"chars_before": before, "chars_after": after}
            steps.append(step)
            last_kept = row
        else:
            steps.append({"stage": name, "outcome": "absent"})
    final = next((s["stage"] for s in reversed(steps) if s["outcome"] == "kept"), None)
    return {"id": doc_id, "url": url, "outcome": "kept" if final == stages[-1][0] else "absent", "stage": final,
            "reason": None, "steps": steps, "text_head": _head((last_kept or {}).get("text"))}


def explain(store: Storage, root: str, key: str) -> dict:
    """Every document whose id or URL is ``key``, traced through the committed stages of a run."""
    stages = committed_stages(store, root)
    if not stages:
        raise StorageError(f"{root}: no committed stage output; run `mdr run` first")
    is_url = "://" in key
    ids: list[str] = []
    for name, man in stages:  # the first stage that has the key names the documents
        out = join(root, name)
        uris = [join(out, p["path"]) for p in man.get("rejects", []) + man.get("parts", [])]
        rows = lookup(store, uris, ids=None if is_url else [key], url=key if is_url else None)
        if rows:
            ids = sorted({r["id"] for r in rows})
            break
    return {"root": root, "key": key, "documents": [trace(store, root, stages, i) for i in ids]}


def print_explanation(result: dict) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not result["documents"]:
        console.print(f"no document with id or URL {result['key']!r} in any stage under {result['root']}")
        return 1
    for doc in result["documents"]:
        verdict = (f"[red]removed by {doc['stage']}: {doc['reason']}[/red]" if doc["outcome"] == "removed"
                   else f"[green]kept to the end ({doc['stage']})[/green]" if doc["outcome"] == "kept"
                   else f"[yellow]not in the last stage's output (last seen: {doc['stage']})[/yellow]")
        console.print(f"\n[bold]{doc['id']}[/bold]  {doc['url'] or ''}\n{verdict}")
        table = Table(show_lines=False)
        for col in ("stage", "outcome", "why / scores"):
            table.add_column(col, overflow="fold")
        for s in doc["steps"]:
            if s["outcome"] == "removed":
                why = s["reason"] + "  " + json.dumps(s["details"], sort_keys=True)
                for lim in s["limits"]:
                    mark = "FAILED" if lim["failed"] else "ok"
                    why += f"\n{lim['score']} = {lim['value']} ({lim['kind']} {lim['limit']}, {lim['param']}): {mark}"
            elif s["outcome"] == "kept":
                cols = {k: v for k, v in s["columns"].items() if k not in ("id", "url")}
                why = ", ".join(f"{k}={v}" for k, v in cols.items() if v is not None)
                if "text_changed" in s:
                    tc = s["text_changed"]
                    why += f"\ntext changed: {tc['chars_before']:,} -> {tc['chars_after']:,} chars"
            else:
                why = "not in this stage's output or rejects"
            table.add_row(s["stage"], s["outcome"], why)
        console.print(table)
        for s in doc["steps"]:
            dup = s.get("duplicate")
            if dup:
                console.print(f"duplicate of [bold]{dup['duplicate_of']}[/bold] {dup.get('url') or ''}")
                if "similarity" in dup:
                    sim = dup["similarity"]
                    line = f"  {sim['ngram']}-gram Jaccard {sim['jaccard']:.3f}"
                    if "minhash_estimate" in sim:
                        line += f", MinHash estimate {sim['minhash_estimate']:.3f} ({sim['minhash']})"
                    console.print(line + (", identical texts" if sim["identical"] else ""))
                if dup.get("error"):
                    console.print(f"  {dup['error']}")
        head = next((s.get("text_head") for s in doc["steps"] if s.get("text_head")), None) or doc.get("text_head")
        if head:
            console.print("[dim]" + head.replace("[", "\\[") + "[/dim]")
    return 0
