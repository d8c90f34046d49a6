"""The numbers behind `mdr report` (report.json), gathered from manifests only, so a huge run reports in seconds.

Each stage's manifest carries its counts, timings, params, stats and the merged per-part profile
(``pipeline.core.profile``); this module turns them into the series the charts draw. Stages that are
missing from a run are simply absent. Only a manifest without a profile (written before profiles
existed) makes the report open a few reject parts, for the samples.
"""
from __future__ import annotations

import json
import time

from pipeline.core.dataset import STAGE_ORDER, iter_part, read_manifest
from pipeline.core.profile import SAMPLE_CHARS, SAMPLES_PER_REASON, SCORE_BINS, length_bin_edges
from pipeline.core.storage import Storage, StorageError, join

FORMAT = "mdr.report/1"
TOP_DOMAINS_SHOWN = 20
FALLBACK_REJECT_PARTS = 8


def committed_stages(store: Storage, root: str) -> list[tuple[str, dict]]:
    """(stage, manifest) for every committed stage under the root, in pipeline order."""
    out = []
    for name in STAGE_ORDER:
        man = read_manifest(store, join(root, name))
        if man is not None:
            out.append((name, man))
    return out


def _profile(man: dict, side: str) -> dict | None:
    return (man.get("profile") or {}).get(side)


def find_threshold(params: dict, score: str, generic: bool = True) -> float | None:
    """A score's threshold from a stage's params: ``min_<score>``, ``<score>_threshold``, else ``threshold``."""
    names = (f"min_{score}", f"{score}_threshold") + (("threshold",) if generic else ())
    stack = [params]
    while stack:
        d = stack.pop(0)
        for n in names:
            v = d.get(n)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        stack.extend(v for v in d.values() if isinstance(v, dict))
    return None


def warc_records(stages: list[tuple[str, dict]]) -> dict | None:
    """The WARC records extract read, by type, beside the HTTP responses among them (its ``in``); None without
    an extract stage. Requests, metadata, warcinfo and revisits are not documents, so the funnel leaves them out."""
    man = dict(stages).get("extract")
    st = (man or {}).get("stats") or {}
    if "records" not in st:
        return None
    return {"records": st["records"], "by_type": dict(sorted((st.get("records_by_type") or {}).items())),
            "http_responses": man["counts"]["in"]}


def funnel(stages: list[tuple[str, dict]]) -> list[dict]:
    """Documents and characters left after each step, RefinedWeb's figure 2 for this run, from the first stage's
    input (extract: the HTTP responses of the WARC files)."""
    steps = []
    for name, man in stages:
        c = man["counts"]
        if not steps:
            label = "HTTP responses" if name == "extract" else f"{name} input"
            steps.append({"step": label, "stage": None, "docs": c["in"], "chars": None})
        kept = _profile(man, "kept")
        steps.append({"step": f"after {name}", "stage": name, "docs": c["kept"],
                      "chars": kept.get("chars") if kept else None})
    first = steps[0]["docs"] if steps else None
    for s in steps:
        s["docs_share"] = round(s["docs"] / first, 6) if first else None
    return steps


def lengths(stages: list[tuple[str, dict]]) -> dict:
    """Kept documents' length histograms per stage (characters, bins of half an octave)."""
    out = {}
    for name, man in stages:
        kept = _profile(man, "kept")
        if not kept or not kept.get("lengths"):
            continue
        ks = sorted(int(k) for k in kept["lengths"])
        ks = list(range(ks[0], ks[-1] + 1))
        out[name] = {"k": ks, "bins": [[round(a, 1), round(b, 1)] for a, b in map(length_bin_edges, ks)],
                     "counts": [kept["lengths"].get(str(k), 0) for k in ks]}
    return out


def languages(stages: list[tuple[str, dict]]) -> dict:
    """Languages of the documents each stage kept, and of those removed for their language."""
    out: dict = {"kept": {}, "removed": {}}
    for name, man in stages:
        kept, removed = _profile(man, "kept"), _profile(man, "removed")
        if kept and kept.get("langs"):
            out["kept"][name] = dict(sorted(kept["langs"].items(), key=lambda kv: -kv[1]))
        if removed and removed.get("langs"):
            for reason, langs in removed["langs"].items():
                out["removed"][f"{name}: {reason}"] = dict(sorted(langs.items(), key=lambda kv: -kv[1]))
    return out


def filter_languages(stages: list[tuple[str, dict]]) -> list[dict]:
    """Per language: documents and characters into the filter stage and kept by it, with the rules applied."""
    names = [n for n, _ in stages]
    if "filter" not in names:
        return []
    i = names.index("filter")
    man = stages[i][1]
    kept = _profile(man, "kept") or {}
    before = _profile(stages[i - 1][1], "kept") if i > 0 else None
    rules = (man.get("params") or {}).get("rules_by_language") or {}
    langs_in = (before or {}).get("langs") or {}
    chars_in = (before or {}).get("lang_chars") or {}
    out = []
    for lang in sorted(set(langs_in) | set(kept.get("langs") or {}), key=lambda x: -langs_in.get(x, 0)):
        docs_in, docs_kept = langs_in.get(lang), (kept.get("langs") or {}).get(lang, 0)
        c_in, c_kept = chars_in.get(lang), (kept.get("lang_chars") or {}).get(lang)
        r = rules.get(lang) or rules.get("*") or {}
        if lang not in rules and lang != "en" and "rules" in r:  # filter logic >= 4 records every language it met
            r = {"rules": "not recorded"}
        out.append({"lang": lang, "docs_in": docs_in, "docs_kept": docs_kept,
                    "docs_kept_share": round(docs_kept / docs_in, 4) if docs_in else None,
                    "chars_in": c_in, "chars_kept": c_kept,
                    "chars_kept_share": round(c_kept / c_in, 4) if c_in and c_kept is not None else None,
                    **{k: r.get(k) for k in RULE_KEYS},
                    # calibrated (filter.languages), generic (a language without an entry), english (the base
                    # sections); manifests before filter logic 4 say own or base
                    "rules": r.get("rules") or ("own" if lang in rules else "base")})
    return out


def few_words(words: list | None, n: int = 10) -> str:
    """A stop-word list as a table shows it: a generic language's whole stopwords-iso list is hundreds of words."""
    if not words:
        return "-"
    return " ".join(words) if len(words) <= n else f"{' '.join(words[:n])} ... ({len(words)} words)"


# what the "rules" column of the per-language table says
RULES_LEGEND = ("calibrated: its filter.languages entry; generic: a language without one, split into words as its "
                "script needs and judged against its stopwords-iso list with the base thresholds; english: the base "
                "sections (en, and documents without a language); own and base: the same, in manifests of filter "
                "logic 3 and older, where a language without an entry was judged by the English base sections")


RULE_KEYS = ("tokenizer", "min_words", "min_mean_word_len", "max_mean_word_len", "min_alpha_words_share",
             "min_stop_words", "stop_words", "max_dup_line_frac", "max_top_ngram_char_frac", "max_dup_ngram_char_frac",
             "max_removed_words_share")


def scores(stages: list[tuple[str, dict]]) -> list[dict]:
    """Histograms of each *score column (kept) and *score detail (removed, per reason) where a stage decides on it."""
    out = []
    edges = [round(i / SCORE_BINS, 4) for i in range(SCORE_BINS + 1)]
    before: set[str] = set()
    for name, man in stages:
        kept, removed = _profile(man, "kept") or {}, _profile(man, "removed") or {}
        names = sorted(set(kept.get("scores", {})) | set(removed.get("scores", {})))
        inherited, before = before, set(kept.get("scores", {}))
        for score in names:
            threshold = find_threshold(man.get("params", {}), score, generic=score not in inherited)
            if score in inherited and score not in removed.get("scores", {}) and threshold is None:
                continue  # a column carried over from an earlier stage, which already shows it
            k = kept.get("scores", {}).get(score, {})
            r = removed.get("scores", {}).get(score, {})
            out.append({"stage": name, "score": score, "edges": edges, "threshold": threshold,
                        "kept": [k.get(str(i), 0) for i in range(SCORE_BINS)],
                        "removed": {reason: [h.get(str(i), 0) for i in range(SCORE_BINS)]
                                    for reason, h in sorted(r.items())}})
    return out


def top_domains(stages: list[tuple[str, dict]], n: int = TOP_DOMAINS_SHOWN) -> list[dict]:
    merged: dict[str, dict[str, int]] = {}
    for name, man in stages:
        removed = _profile(man, "removed")
        for dom, by_reason in ((removed or {}).get("domains") or {}).items():
            d = merged.setdefault(dom, {})
            for reason, k in by_reason.items():
                d[f"{name}: {reason}"] = d.get(f"{name}: {reason}", 0) + k
    ranked = sorted(merged.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:n]
    return [{"domain": d, "removed": sum(v.values()), "by_reason": dict(sorted(v.items()))} for d, v in ranked]


def _clean_sample(s: dict) -> dict:
    return {"id": s.get("id"), "url": s.get("url"), "details": s.get("details") or {},
            "text": s["text"][:SAMPLE_CHARS] if s.get("text") else None}


def samples_from_rejects(store: Storage, root: str, man: dict) -> dict:
    """Fallback for manifests without a profile: a few rows per reason from the first reject parts."""
    out: dict[str, list] = {}
    for p in man.get("rejects", [])[:FALLBACK_REJECT_PARTS]:
        try:
            for t in iter_part(store, join(root, p["path"]), ["id", "url", "reason", "details", "text"]):
                for row in t.to_pylist():
                    bucket = out.setdefault(row["reason"], [])
                    if len(bucket) < SAMPLES_PER_REASON:
                        row["details"] = json.loads(row["details"]) if row["details"] else {}
                        bucket.append(_clean_sample(row))
        except (StorageError, OSError):
            continue
    return out


def samples(store: Storage, root: str, stages: list[tuple[str, dict]]) -> dict:
    out = {}
    for name, man in stages:
        removed = _profile(man, "removed")
        if removed is not None:
            got = {r: [_clean_sample(s) for s in rows] for r, rows in (removed.get("samples") or {}).items()}
        elif man.get("rejects"):
            got = samples_from_rejects(store, join(root, name), man)
        else:
            got = {}
        if got:
            order = sorted(got, key=lambda r: -man["counts"]["removed"].get(r, 0))
            out[name] = {r: got[r] for r in order}
    return out


def pii(stages: list[tuple[str, dict]]) -> dict | None:
    """What PII redaction replaced in the kept documents (the filter manifest's stats.pii); None: not run."""
    got = (dict(stages).get("filter") or {}).get("stats", {}).get("pii")
    return dict(got) if got else None


def pii_summary(p: dict | None) -> str:
    """One line for status, report and card: 'e-mail 12, ip 3 replaced in 10 documents'."""
    if not p:
        return "not run (filter.pii.enabled=false, or a filter output written before redaction existed)"
    counts = ", ".join(f"{kind} {p.get(kind, 0):,}" for kind in p.get("kinds", []))
    return f"{counts} replaced in {p.get('documents_redacted', 0):,} kept documents"


def stage_rows(stages: list[tuple[str, dict]]) -> list[dict]:
    rows = []
    for name, man in stages:
        c = man["counts"]
        kept = _profile(man, "kept")
        rows.append({"stage": name, "config_hash": man["config_hash"], "created": man.get("created"),
                     "input": man.get("input", {}).get("uri"), "in": c["in"], "kept": c["kept"],
                     "removed": c["removed"], "chars": kept.get("chars") if kept else None,
                     "parts": len(man.get("parts", [])), "seconds": man["timings"]["seconds"],
                     "failed_inputs": man.get("failed_inputs", []), "params": man.get("params", {}),
                     "profiled": bool(kept is not None and _profile(man, "removed") is not None)})
    return rows


def collect(store: Storage, root: str) -> dict:
    """Everything `mdr report` shows, as one JSON-ready dict (report.json)."""
    stages = committed_stages(store, root)
    if not stages:
        raise StorageError(f"{root}: no committed stage output (no <stage>/_manifest.json); run `mdr run` first")
    fuzzy = dict(stages).get("dedup_fuzzy")
    clusters = None
    if fuzzy is not None:
        st = fuzzy.get("stats", {})
        clusters = {"sizes": st.get("component_sizes", {}), "components": st.get("components"),
                    "largest": st.get("largest_component"), "docs_in_components": st.get("docs_in_components"),
                    "minhash": st.get("minhash"), "threshold_50": st.get("threshold_50")}
    notes = [f"{name}: written without per-part profiles; its lengths, languages, scores and domains are not shown"
             for name, man in stages if _profile(man, "kept") is None]
    return {
        "format": FORMAT, "root": root,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stages": stage_rows(stages),
        "warc_records": warc_records(stages),
        "funnel": funnel(stages),
        "removed": {name: dict(sorted(man["counts"]["removed"].items(), key=lambda kv: -kv[1]))
                    for name, man in stages},
        "languages": languages(stages),
        "filter_languages": filter_languages(stages),
        "lengths": lengths(stages),
        "duplicate_clusters": clusters,
        "scores": scores(stages),
        "top_removed_domains": top_domains(stages),
        "timings": {name: man["timings"]["seconds"] for name, man in stages},
        "samples": samples(store, root, stages),
        "pii": pii(stages),
        "notes": notes,
    }
