"""What users see about a run: `mdr status` (a table of stages) and `mdr report`, read from manifests only."""
from __future__ import annotations

import sys

from pipeline.core.config import Config
from pipeline.core.dataset import STAGE_ORDER, TASKS_DIR, read_manifest
from pipeline.core.storage import Storage, join


def stage_states(store: Storage, root: str) -> list[dict]:
    """One row per stage folder: committed (with counts), partial (tasks done, no manifest), or absent."""
    rows = []
    for name in STAGE_ORDER:
        out = join(root, name)
        man = read_manifest(store, out)
        if man is not None:
            rows.append({"stage": name, "state": "committed", "manifest": man})
        elif store.exists(join(out, TASKS_DIR)):
            done = len(store.list_files(join(out, TASKS_DIR)))
            rows.append({"stage": name, "state": f"partial (resumable; {done} tasks done)", "manifest": None})
    return rows


def print_status(root: str, cfg: Config) -> int:
    from rich.console import Console
    from rich.table import Table

    store = Storage(cfg.storage)
    rows = stage_states(store, root)
    console = Console(width=None if sys.stdout.isatty() else 160)  # logs and pipes get whole rows
    if not rows:
        from pipeline.core.storage import StorageError
        raise StorageError(f"{root}: no stage output here (no <stage>/_manifest.json or _tasks/); check the path, "
                           f"or run `mdr run --output {root}` first")
    table = Table(title=f"mdr run at {root}")
    for col in ("stage", "state", "in", "kept", "kept %", "chars kept", "removed (top reasons)", "failed inputs",
                "seconds", "config"):
        table.add_column(col, justify="right" if col in ("in", "kept", "kept %", "chars kept", "seconds") else "left")
    for r in rows:
        m = r["manifest"]
        if m is None:
            table.add_row(r["stage"], r["state"], "", "", "", "", "", "", "", "")
            continue
        c = m["counts"]
        top = sorted(c["removed"].items(), key=lambda kv: -kv[1])[:4]
        chars = ((m.get("profile") or {}).get("kept") or {}).get("chars")
        table.add_row(r["stage"], r["state"], f"{c['in']:,}", f"{c['kept']:,}",
                      f"{100 * c['kept'] / c['in']:.1f}" if c["in"] else "-", f"{chars:,}" if chars is not None else "-",
                      ", ".join(f"{k} {v:,}" for k, v in top), str(len(m.get("failed_inputs", []))),
                      f"{m['timings']['seconds']:.1f}", m["config_hash"])
    console.print(table)
    filter_man = next((r["manifest"] for r in rows if r["stage"] == "filter" and r["manifest"]), None)
    if filter_man is not None:
        from pipeline.reports.data import pii_summary
        console.print(f"PII redaction (filter): {pii_summary((filter_man.get('stats') or {}).get('pii'))}",
                      markup=False, highlight=False, soft_wrap=True)
    for r in rows:
        note = records_note(r["stage"], r["manifest"])
        if note:
            console.print(f"{r['stage']} read {note}: the documents start at the responses", markup=False,
                          highlight=False)
    for r in rows:
        for line in failed_hint(r["stage"], join(root, r["stage"]), r["manifest"]):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    for name in ("report.html", "README.md"):
        if store.exists(join(root, name)):
            console.print(f"{name}: {join(root, name)}")
    return 0


def records_note(stage: str, man: dict | None) -> str | None:
    """"432 WARC records, 143 HTTP responses" for a committed extract (its ``in`` are the responses), else None."""
    st = (man or {}).get("stats") or {}
    if stage != "extract" or "records" not in st:
        return None
    return f"{st['records']:,} WARC records, {man['counts']['in']:,} HTTP responses"


def failed_hint(stage: str, out: str, man: dict | None, show: int = 3) -> list[str]:
    """Lines naming a committed stage's failed inputs (the first few, with their errors) and how to retry them."""
    failed = (man or {}).get("failed_inputs") or []
    if not failed:
        return []
    lines = [f"{stage}: {len(failed)} failed input{'s' if len(failed) > 1 else ''}, not in its output:"]
    lines += [f"  {f['file']}: {str(f['error'])[:200]}" for f in failed[:show]]
    if len(failed) > show:
        lines.append(f"  ... and {len(failed) - show} more (report.html lists them)")
    lines.append(f"  once fixed, run just them again: mdr stage {stage} --input {man['input']['uri']} --output {out} "
                 f"--retry-failed (with the run's --config/--set; `mdr run ... --retry-failed` does it for every stage)")
    return lines


def write_report(store: Storage, root: str) -> tuple[str, str]:
    """`mdr report`: report.json and a self-contained report.html in the output root, from manifests only."""
    import json

    from pipeline.reports.data import collect
    from pipeline.reports.html import charts, render

    data = collect(store, root)
    data["charts"] = charts(data)
    html_uri, json_uri = join(root, "report.html"), join(root, "report.json")
    store.write_text(json_uri, json.dumps(data, indent=1, default=str))
    store.write_text(html_uri, render(data))
    return html_uri, json_uri
