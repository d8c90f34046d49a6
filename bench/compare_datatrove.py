"""mdr's pipeline against datatrove's equivalent pipeline on the same WARCs and cores: time, CPU, memory, kept documents.

    python -m bench.compare_datatrove --pages 20000          # the lead's measurement (quiet machine)
    python -m bench.compare_datatrove --pages 400            # smoke run

Input (bench/webgen.py): every HTTP-200 HTML page of ../shared/data/warc/ (~360 real pages), then replicas
of them up to --pages, each with its own URL: 15% exact copies, 35% near-duplicates (0.5-4% of the words
edited), 50% far edits (20-35%: new documents); WARC files of ~500 pages (fewer per file for small inputs,
so that every core has files), in a scratch folder (--workdir; reused when built with the same arguments).

The two sides run one after the other, each stage in a fresh process measured with bench/proctree.py
(wall time, CPU time of the whole process tree, peak RSS and PSS of the tree):

  mdr        `python -m pipeline.cli stage NAME --master local[CORES]` for extract, filter, dedup_fuzzy, in that
             order (Spark start-up and shutdown counted in every stage), refinedweb preset plus the shared UT1
             blocklist and LDNOOBW word list: URL filter, HTTP-200 HTML, charset decoding, language pre-screen,
             trafilatura (fast + favor_recall), lid.176 (en >= 0.65); Gopher repetition and quality filters,
             RefinedWeb line-wise corrections; MinHash LSH (dedup_fuzzy preset) + connected components.
  datatrove  LocalPipelineExecutor, CORES workers and tasks: WarcReader -> URLFilter -> Trafilatura ->
             LanguageFilter(en, 0.65) -> JsonlWriter; JsonlReader -> GopherRepetitionFilter ->
             GopherQualityFilter -> JsonlWriter; MinhashDedupSignature, MinhashDedupBuckets (one task per
             bucket, as datatrove requires), MinhashDedupCluster (one task), MinhashDedupFilter -> JsonlWriter.
             Every threshold is taken from mdr's configuration; removed documents go to light exclusion
             writers (id, url, reason), as mdr writes rejects.

What cannot match exactly (printed with the results):
  - URL filter: datatrove gets mdr's lists (UT1 categories' domains + curated domains, UT1 URLs, LDNOOBW hard
    words, mdr's strict and soft words), but matches differently: registered domain and full host only (mdr: every
    parent domain), URLs exactly with the scheme (mdr: URL prefixes, scheme and www ignored), word phrases
    collapse into one word. --dt-integrated-lists gives datatrove its own bundled lists instead.
  - Decoding: datatrove tries UTF-8 then cchardet; mdr tries BOM, UTF-8, the HTTP and meta charsets, then
    charset_normalizer. datatrove reads any response record (no HTTP status check); the input holds only 200s.
  - Extraction: the same trafilatura 2.3.1 and settings (fast, favor_recall, tables, no dedup, 10 s limit), but
    datatrove does not pass the URL to trafilatura and runs it in a sandbox process (each page's HTML goes
    through a pipe); mdr has the pre-screen (pages confidently in another language skipped before extraction;
    --no-prescreen turns it off).
  - Language ID: the same lid.176.ftz model; datatrove keeps a document when P(en) > 0.65, mdr when en is the top
    label and P(en) >= 0.65.
  - Filters: same Gopher thresholds; mdr also runs RefinedWeb's line-wise corrections, which datatrove lacks
    (--no-line-corrections turns them off for strictly equal work).
  - MinHash: same word 5-grams, bands and rows, but different normalization (datatrove also folds digits and
    diacritics) and tokenization (spaCy vs whitespace), different hash functions (xxhash64 + 64-bit universal
    hashing vs mdr's), so documents near the threshold can fall either way; a cluster keeps its smallest id in
    mdr and the union-find root in datatrove, so the kept representative of a cluster often differs: the
    comparison below tells "other representative" apart from real disagreements.

Every step's output is read back to compare what each side kept, by URL (both keep it); the reason the other
side removed a document is shown. Exits 0 when both sides finished (the figures are for the reader to judge).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import webgen
from bench.proctree import Measured, run_measured
from bench.warcs import ROOT, shared

STAGES = ("extract", "filter", "dedup_fuzzy")
DT_STEPS = {"extract": ("extract",), "filter": ("filter",),
            "dedup_fuzzy": ("minhash_signature", "minhash_buckets", "minhash_cluster", "minhash_filter")}


# --------------------------------------------------------------------------- settings

def mdr_overrides(args) -> list[str]:
    sets = [f"extract.url_filter.blocklist_uri={shared('lists', 'ut1')}",
            f"extract.url_filter.words_uri={shared('lists', 'ldnoobw')}",
            "filter.pii.enabled=false"]  # datatrove's filter step has no PIIFormatter: equal work (bench/pii_throughput.py)
    if args.no_line_corrections:
        sets.append("filter.lines.enabled=false")
    if args.no_prescreen:
        sets.append("extract.langid.prescreen=false")
    if args.minhash_preset:
        sets.append(f"dedup_fuzzy.preset={args.minhash_preset}")
    return sets


def datatrove_args(cfg, work: Path, warc_dir: str, args) -> dict:
    """datatrove's settings, every threshold taken from mdr's effective configuration ``cfg``."""
    import dataclasses

    from pipeline.core.storage import Storage
    from pipeline.stages.extract import load_url_filter
    from udfs.langid import default_model_path

    uf = load_url_filter(cfg.extract.url_filter, Storage())
    urls = set()
    for key in uf.urls:   # datatrove compares whole URLs: give it the scheme and www variants of each entry
        for scheme in ("http://", "https://"):
            urls.update({scheme + key, scheme + "www." + key, scheme + key + "/", scheme + "www." + key + "/"})
    p = cfg.dedup_fuzzy.params()
    ex = cfg.extract
    return {
        "warc_dir": warc_dir, "work": str(work), "tasks": args.cores, "workers": args.cores,
        "url_filter": {"integrated_lists": args.dt_integrated_lists,
                       "domains": sorted(uf.domains | uf.curated_domains), "urls": sorted(urls),
                       "hard_words": sorted(" ".join(w) for w in uf.hard_words),
                       "strict_words": list(uf.strict_words),
                       "soft_words": sorted(" ".join(w) for w in uf.soft_words),
                       "soft_min_distinct": uf.soft_min_distinct},
        "trafilatura": {"favor_precision": ex.favor_precision, "favor_recall": ex.favor_recall,
                        "include_tables": ex.include_tables, "fallback": ex.fallback, "deduplicate": ex.deduplicate,
                        "timeout_s": ex.timeout_s},
        "languages": list(ex.langid.languages), "min_lang_score": ex.langid.min_score,
        "lid_model": ex.langid.model_uri or default_model_path(),
        "repetition": dataclasses.asdict(cfg.filter.repetition), "quality": dataclasses.asdict(cfg.filter.quality),
        "minhash": {"ngram": p.ngram, "bands": p.bands, "rows": p.rows, "seed": p.seed, "num_hashes": p.num_hashes},
    }


# --------------------------------------------------------------------------- running

def _log(work: Path, side: str, step: str, m: Measured) -> None:
    """Each measured process's output, kept in the work folder (logs/<side>-<step>.log)."""
    (work / "logs").mkdir(parents=True, exist_ok=True)
    (work / "logs" / f"{side}-{step}.log").write_text(f"$ {' '.join(m.cmd)}\n{m.stdout}\n{m.stderr}")


def _fail(side: str, step: str, m: Measured) -> None:
    print(f"\n{side} {step} failed (exit {m.rc}); last output:\n{(m.stdout + m.stderr)[-4000:]}", file=sys.stderr)
    raise SystemExit(1)


def run_mdr(work: Path, warc_dir: str, sets: list[str], cores: int) -> dict:
    root = work / "mdr"
    shutil.rmtree(root, ignore_errors=True)
    res, prev = {}, warc_dir
    for stage in STAGES:
        cmd = [sys.executable, "-m", "pipeline.cli", "stage", stage, "--input", str(prev), "--output",
               str(root / stage), "--master", f"local[{cores}]"]
        for s in sets:
            cmd += ["--set", s]
        print(f"  mdr {stage} ...", end="", flush=True)
        m = run_measured(cmd, cwd=str(ROOT))
        _log(work, "mdr", stage, m)
        if m.rc:
            _fail("mdr", stage, m)
        man = json.loads((root / stage / "_manifest.json").read_text())
        res[stage] = {"m": m, "in": man["counts"]["in"], "kept": man["counts"]["kept"],
                      "removed": man["counts"]["removed"], "stage_s": man["timings"]["seconds"]}
        print(f" {m.wall_s:.1f} s", flush=True)
        prev = root / stage
    return res


def _count_jsonl(folder: Path) -> int:
    n = 0
    for f in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(f, "rb") as fh:
            n += sum(1 for _ in fh)
    return n


def run_datatrove(work: Path, dt_args: dict, n_pages: int) -> dict:
    root = work / "datatrove"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    dt_args = dict(dt_args, work=str(root))
    args_file = root / "args.json"
    args_file.write_text(json.dumps(dt_args))
    env = dict(os.environ, HF_HOME=str(work / "hf-home"), TQDM_DISABLE="1")
    res = {}
    for stage in STAGES:
        steps = {}
        for step in DT_STEPS[stage]:
            print(f"  datatrove {step} ...", end="", flush=True)
            m = run_measured([sys.executable, "-m", "bench.compare_datatrove", "_dt", step, str(args_file)],
                             cwd=str(ROOT), env=env)
            _log(work, "datatrove", step, m)
            if m.rc:
                _fail("datatrove", step, m)
            steps[step] = m
            print(f" {m.wall_s:.1f} s", flush=True)
        kept = _count_jsonl(root / stage)
        res[stage] = {"steps": steps, "kept": kept}
    res["extract"]["in"] = n_pages
    res["filter"]["in"] = res["extract"]["kept"]
    res["dedup_fuzzy"]["in"] = res["filter"]["kept"]
    return res


# --------------------------------------------------------------------------- reading both sides' outputs

def _read_parquet_rows(stage_dir: Path, rejects: bool, columns: list[str]) -> list[dict]:
    import pyarrow.parquet as pq
    man = json.loads((stage_dir / "_manifest.json").read_text())
    rows: list[dict] = []
    for part in man["rejects" if rejects else "parts"]:
        t = pq.ParquetFile(stage_dir / part["path"]).read(columns=[c for c in columns
                                                                    if c in pq.read_schema(stage_dir / part["path"]).names])
        rows += t.to_pylist()
    return rows


def mdr_fates(root: Path) -> tuple[dict, dict, dict]:
    """(url -> (stage, reason) for removed documents, stage -> kept url set, url -> duplicate_of url)."""
    fate, kept, dup_of = {}, {}, {}
    id_url: dict[str, str] = {}
    for stage in STAGES:
        rows = _read_parquet_rows(root / stage, False, ["id", "url"])
        kept[stage] = {r["url"] for r in rows}
        id_url.update({r["id"]: r["url"] for r in rows})
        for r in _read_parquet_rows(root / stage, True, ["id", "url", "reason", "details"]):
            details = json.loads(r["details"]) if r.get("details") else {}
            reason = r["reason"]
            if stage == "extract" and reason.startswith("lang") and "lang" in details:
                reason += f" ({details['lang']} {details.get('lang_score', '')})"
            fate[r["url"]] = (stage, reason)
            if details.get("duplicate_of"):
                dup_of[r["url"]] = details["duplicate_of"]
    dup_of = {u: id_url.get(d, d) for u, d in dup_of.items()}
    return fate, kept, dup_of


def _jsonl_rows(folder: Path):
    for f in sorted(folder.glob("**/*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                yield json.loads(line)


def datatrove_fates(root: Path, all_urls: set[str]) -> tuple[dict, dict, dict, dict]:
    """(url -> (stage, reason), stage -> kept url set, url -> cluster id of removed, url -> cluster id of kept)."""
    kept = {s: {r["metadata"]["url"] for r in _jsonl_rows(root / s)} for s in STAGES}
    fate: dict[str, tuple[str, str]] = {}
    for r in _jsonl_rows(root / "removed" / "url"):
        fate[r["url"]] = ("extract", f"url_filter:{r.get('reason')}")
    for r in _jsonl_rows(root / "removed" / "lang"):
        fate[r["url"]] = ("extract", f"lang ({r.get('language')} {round(r.get('language_score') or 0, 4)})")
    for u in all_urls - kept["extract"] - set(fate):
        fate[u] = ("extract", "no text (empty, timeout or error) or not read")
    for name in ("repetition", "quality"):
        for r in _jsonl_rows(root / "removed" / name):
            fate[r["url"]] = ("filter", str(r.get("reason")))
    removed_cluster = {}
    for r in _jsonl_rows(root / "removed" / "minhash"):
        fate[r["url"]] = ("dedup_fuzzy", "minhash duplicate")
        removed_cluster[r["url"]] = r.get("cluster")
    kept_cluster = {r["metadata"]["url"]: r["metadata"].get("minhash_cluster_id", -1)
                    for r in _jsonl_rows(root / "dedup_fuzzy")}
    return fate, kept, removed_cluster, kept_cluster


def compare_kept(work: Path, truth: dict[str, dict], samples: int) -> None:
    all_urls = set(truth)
    m_fate, m_kept, m_dup = mdr_fates(work / "mdr")
    d_fate, d_kept, d_rm_cluster, d_kept_cluster = datatrove_fates(work / "datatrove", all_urls)
    print("\nkept documents, by URL, after each stage (both sides' outputs read back)")
    print(f"  {'stage':12s} {'mdr':>7s} {'datatrove':>10s} {'both':>7s} {'only mdr':>9s} {'only dt':>8s}")
    for s in STAGES:
        a, b = m_kept[s], d_kept[s]
        print(f"  {s:12s} {len(a):7,d} {len(b):10,d} {len(a & b):7,d} {len(a - b):9,d} {len(b - a):8,d}")

    # datatrove clusters: cluster id -> kept url
    dt_rep = {c: u for u, c in d_kept_cluster.items() if c is not None and c != -1}
    final_m, final_d = m_kept["dedup_fuzzy"], d_kept["dedup_fuzzy"]

    def why(u: str, fate: dict, kept_final: set) -> str:
        return "kept" if u in kept_final else "{}: {}".format(*fate.get(u, ("?", "not seen")))

    def classify(u: str, mdr_kept_it: bool) -> str:
        """Why one side kept ``u`` and the other did not, in a few classes."""
        other_fate = (d_fate if mdr_kept_it else m_fate).get(u, ("?", "?"))
        if other_fate[0] != "dedup_fuzzy":
            return f"{other_fate[0]} ({other_fate[1].split(' (')[0]})"
        if mdr_kept_it:   # datatrove removed u as a duplicate: did mdr remove datatrove's keeper as a dup of u?
            rep = dt_rep.get(d_rm_cluster.get(u))
            same = rep is not None and m_dup.get(rep) == u   # mdr's duplicate_of is its component's keeper
        else:             # mdr removed u as a duplicate of m_dup[u]: is that keeper in u's datatrove cluster?
            keeper = m_dup.get(u)
            c = d_kept_cluster.get(u)
            same = keeper is not None and c not in (None, -1) and d_rm_cluster.get(keeper) == c
        return "dedup_fuzzy (same cluster, other representative kept)" if same else "dedup_fuzzy (clustered differently)"

    only_m, only_d = sorted(final_m - final_d), sorted(final_d - final_m)
    print(f"\nafter the last stage: mdr kept {len(final_m):,}, datatrove kept {len(final_d):,}, both {len(final_m & final_d):,}; "
          f"kept by mdr only {len(only_m):,}, by datatrove only {len(only_d):,}")
    for label, urls, mdr_side in (("kept by mdr, removed by datatrove", only_m, True),
                                  ("kept by datatrove, removed by mdr", only_d, False)):
        if not urls:
            continue
        cls = {u: classify(u, mdr_side) for u in urls}
        classes = Counter(cls.values())
        print(f"  {label}: " + ", ".join(f"{n:,} at {c}" for c, n in classes.most_common()))
        by_class = [[u for u in urls if cls[u] == c] for c, _ in classes.most_common()]
        shown = [g[i] for i in range(max(map(len, by_class))) for g in by_class if i < len(g)][:samples]
        for u in shown:   # round-robin over the classes, so each class has an example
            t = truth.get(u, {})
            other = why(u, d_fate if mdr_side else m_fate, final_d if mdr_side else final_m)
            keeper = dt_rep.get(d_rm_cluster.get(u)) if mdr_side else m_dup.get(u)
            if keeper:
                other += f", kept instead: {keeper[:90]}"
            print(f"    {u[:90]}  [{t.get('kind')} {t.get('rate')}, {t.get('source')}]  -> "
                  f"{'datatrove' if mdr_side else 'mdr'}: {other}")
    print("\n  the reasons each side removed documents for, at the stage the other side kept them to:")
    for label, fate, kept_other in (("mdr", m_fate, d_kept), ("datatrove", d_fate, m_kept)):
        diff = Counter(f"{st}: {r.split(' (')[0]}" for u, (st, r) in fate.items() if u in kept_other[st])
        print(f"    {label:9s}: " + (", ".join(f"{n:,} {c}" for c, n in diff.most_common(8)) or "none"))

    # ground truth of the generated near-duplicates: pages that survived both sides' filters, by kind
    common = m_kept["filter"] & d_kept["filter"]
    print("\n  fuzzy dedup by page kind, among the pages both sides kept through filter "
          "(each family of copies should keep one; far edits should all be kept):")
    print(f"    {'kind':9s} {'pages':>7s} {'mdr kept':>9s} {'dt kept':>8s}   (the member a cluster keeps differs between "
          "the sides, so counts shift between original, exact and near)")
    for kind in ("original", "exact", "near", "far"):
        us = [u for u in common if truth.get(u, {}).get("kind") == kind]
        if us:
            print(f"    {kind:9s} {len(us):7,d} {sum(u in final_m for u in us):9,d} {sum(u in final_d for u in us):8,d}")
    fams: dict[int, list[str]] = {}
    for u in common:
        t = truth.get(u, {})
        if t.get("kind") in ("original", "exact", "near"):
            fams.setdefault(t["base"], []).append(u)
    fams = {b: us for b, us in fams.items() if len(us) > 1}
    if fams:
        def tally(final: set) -> str:
            c = Counter(min(sum(u in final for u in us), 2) for us in fams.values())
            return f"{c[1]:,} kept one, {c[2]:,} kept more (near-duplicates under the threshold), {c[0]:,} kept none"
        print(f"    families of copies (a page with its exact and near copies, 2+ members through filter): {len(fams):,}; "
              f"mdr {tally(final_m)}; datatrove {tally(final_d)}")


# --------------------------------------------------------------------------- reporting

def _row(name: str, side: str, m_wall: float, cpu: float, n_in: int, kept: int, rss: float, pss: float, cores: int) -> str:
    per_core = n_in / m_wall / cores if m_wall else 0.0
    per_cpu = n_in / cpu if cpu else 0.0
    return (f"  {name:19s} {side:10s} {m_wall:8.1f} {cpu:8.1f} {n_in:8,d} {kept:8,d} {per_core:10.2f} {per_cpu:10.2f} "
            f"{rss:9.0f} {pss:9.0f}")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:8.2f}" if b else "       -"


def report(mres: dict, dres: dict, cores: int) -> None:
    print(f"\nper stage (wall and CPU in seconds; docs/s/core = documents in / wall / {cores} cores; docs/CPU-s = "
          "documents in / CPU seconds; peak RSS and PSS of the whole process tree in MB)")
    hdr = (f"  {'stage':19s} {'side':10s} {'wall s':>8s} {'CPU s':>8s} {'docs in':>8s} {'kept':>8s} {'docs/s/core':>10s} "
           f"{'docs/CPU-s':>10s} {'peak RSS':>9s} {'peak PSS':>9s}")
    print(hdr)
    tot = {"mdr": [0.0, 0.0, 0.0, 0.0], "dt": [0.0, 0.0, 0.0, 0.0]}
    for stage in STAGES:
        mr, dr = mres[stage], dres[stage]
        m = mr["m"]
        steps = list(dr["steps"].values())
        d_wall, d_cpu = sum(s.wall_s for s in steps), sum(s.cpu_s for s in steps)
        d_rss, d_pss = max(s.peak_rss_mb for s in steps), max(s.peak_pss_mb for s in steps)
        print(_row(stage, "mdr", m.wall_s, m.cpu_s, mr["in"], mr["kept"], m.peak_rss_mb, m.peak_pss_mb, cores))
        print(_row("", "datatrove", d_wall, d_cpu, dr["in"], dr["kept"], d_rss, d_pss, cores))
        if len(steps) > 1:
            for name, s in dr["steps"].items():
                print(_row("  " + name.replace("minhash_", "minhash "), "", s.wall_s, s.cpu_s, dr["in"], 0,
                           s.peak_rss_mb, s.peak_pss_mb, cores).replace("        0 ", "        - "))
        print(f"  {'':19s} {'mdr/dt':10s} {_ratio(m.wall_s, d_wall)} {_ratio(m.cpu_s, d_cpu)} {'':8s} {'':8s} "
              f"{_ratio(d_wall, m.wall_s):>10s} {_ratio(d_cpu, m.cpu_s):>10s} {_ratio(m.peak_rss_mb, d_rss):>9s} "
              f"{_ratio(m.peak_pss_mb, d_pss):>9s}")
        print(f"  {'':19s} {'':10s} mdr: {mr['stage_s']:.1f} s of the stage's own timing (manifest), "
              f"{m.wall_s - mr['stage_s']:.1f} s outside it (process start, imports, config, shutdown)")
        for k, v in ((("mdr"), (m.wall_s, m.cpu_s, m.peak_rss_mb, m.peak_pss_mb)), ("dt", (d_wall, d_cpu, d_rss, d_pss))):
            tot[k][0] += v[0]
            tot[k][1] += v[1]
            tot[k][2] = max(tot[k][2], v[2])
            tot[k][3] = max(tot[k][3], v[3])
    n = mres["extract"]["in"]
    print(_row("total", "mdr", tot["mdr"][0], tot["mdr"][1], n, mres["dedup_fuzzy"]["kept"], tot["mdr"][2], tot["mdr"][3], cores))
    print(_row("", "datatrove", tot["dt"][0], tot["dt"][1], n, dres["dedup_fuzzy"]["kept"], tot["dt"][2], tot["dt"][3], cores))
    print(f"  {'':19s} {'mdr/dt':10s} {_ratio(tot['mdr'][0], tot['dt'][0])} {_ratio(tot['mdr'][1], tot['dt'][1])} "
          f"{'':8s} {'':8s} {_ratio(tot['dt'][0], tot['mdr'][0]):>10s} {_ratio(tot['dt'][1], tot['mdr'][1]):>10s} "
          f"{_ratio(tot['mdr'][2], tot['dt'][2]):>9s} {_ratio(tot['mdr'][3], tot['dt'][3]):>9s}")
    print("  (mdr/dt: below 1 means mdr used less wall time, CPU or memory; for docs/s the ratio is mdr's rate over "
          "datatrove's, above 1 means mdr is faster. Total peak = the largest stage peak.)")
    print("\nCPU seconds, the two lower bounds (bench/proctree.py): getrusage of reaped children / own CPU of every "
          "process read from /proc every 0.2 s; the table shows the larger (getrusage misses the Spark Python "
          "workers: pyspark's daemon ignores SIGCHLD, so the kernel discards their times)")
    for stage in STAGES:
        m = mres[stage]["m"]
        steps = list(dres[stage]["steps"].values())
        print(f"  {stage:12s} mdr {m.cpu_rusage_s:7.1f} / {m.cpu_sampled_s:7.1f}    datatrove "
              f"{sum(x.cpu_rusage_s for x in steps):7.1f} / {sum(x.cpu_sampled_s for x in steps):7.1f}")
    print("\nmemory by process role, largest stage (PSS MB: largest single process / largest sum / most at once)")
    for side, stage_ms in (("mdr", {s: mres[s]["m"] for s in STAGES}),
                           ("datatrove", {f"{s}": m for st in STAGES for s, m in dres[st]["steps"].items()})):
        for stage, m in stage_ms.items():
            roles = ", ".join(f"{r} {v['single_pss_mb']:.0f}/{v['sum_pss_mb']:.0f}/{v['max_procs']}"
                              for r, v in sorted(m.roles.items()))
            print(f"  {side:9s} {stage:19s} {roles}")


def versions() -> str:
    from importlib.metadata import version
    out = {}
    for name in ("trafilatura", "datatrove", "pyspark", "fasttext-numpy2", "numpy", "spacy", "xxhash", "pyarrow",
                 "tldextract"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "absent"
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except Exception:
        java = "java: not found"
    return (f"Python {platform.python_version()}, {java}; " + ", ".join(f"{k} {v}" for k, v in out.items())
            + "  (datatrove runs our trafilatura 2.3.1; its processing extra would pin trafilatura<1.12)")


# --------------------------------------------------------------------------- extraction quality (optional)

def extraction_quality(dt_traf: dict) -> None:
    """Token F1 against ../shared/data/groundtruth on the 181 labelled pages: mdr's extraction, datatrove's
    Trafilatura step with the settings of this run, and with datatrove's own defaults; each side decodes as it does."""
    import cchardet
    from datatrove.pipeline.extractors import Trafilatura

    from bench.extraction_quality import prf
    from bench.warcs import html_pages
    from udfs.decode import decode_payload
    from udfs.extract import ExtractSettings, extract_text

    gold = {d["url"]: d["article_body"] for d in map(json.loads, shared("groundtruth", "news-articles-181.jsonl").open())}
    pages = [p for p in html_pages(shared("warc", "news-articles-181.warc.gz")) if p[0] in gold]

    def dt_decode(payload: bytes) -> str:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            enc = cchardet.detect(payload)["encoding"] or "utf-8"
            return payload.decode(enc, "replace")

    matched = Trafilatura(favour_precision=dt_traf["favor_precision"], deduplicate=dt_traf["deduplicate"],
                          fast=not dt_traf["fallback"], favor_recall=dt_traf["favor_recall"],
                          include_tables=dt_traf["include_tables"])
    defaults = Trafilatura()
    runs = {"mdr (fast + favor_recall)": lambda url, payload, ct: extract_text(decode_payload(payload, ct)[0], url,
                                                                             ExtractSettings()),
            "datatrove, this run's settings": lambda url, payload, ct: matched.extract(dt_decode(payload)) or "",
            "datatrove defaults (precision, dedup)": lambda url, payload, ct: defaults.extract(dt_decode(payload)) or ""}
    print(f"\nextraction quality on {len(pages)} labelled pages (token P/R/F1, mean per page; bench/extraction_quality.py's scorer)")
    for name, fn in runs.items():
        scores = [prf(fn(url, payload, ct), gold[url])[:3] for url, payload, ct in pages]
        p, r, f = (sum(s[i] for s in scores) / len(scores) for i in range(3))
        print(f"  {name:38s} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}")


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_dt":
        from bench.datatrove_steps import child_main
        return child_main(argv[1], argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20000, help="HTML pages of input (default 20000; ~360 are real, the rest replicas)")
    ap.add_argument("--per-warc", type=int, default=500, help="pages per WARC file (default 500; smaller for small "
                                                              "inputs so every core gets files)")
    ap.add_argument("--cores", type=int, default=2, help="Spark local[N] and datatrove workers/tasks (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="input generation seed")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: a new temporary folder); the input is "
                                                    "reused from it when built with the same arguments")
    ap.add_argument("--minhash-preset", choices=["refinedweb", "fineweb"], default=None,
                    help="MinHash numbers for both sides (default: mdr's dedup_fuzzy.preset, refinedweb 450x20; "
                         "fineweb 14x8 is far cheaper for datatrove)")
    ap.add_argument("--no-line-corrections", action="store_true", help="turn mdr's line-wise corrections off "
                                                                       "(datatrove has none)")
    ap.add_argument("--no-prescreen", action="store_true", help="turn mdr's language pre-screen off")
    ap.add_argument("--dt-integrated-lists", action="store_true", help="datatrove's URLFilter with its own bundled "
                                                                       "lists instead of mdr's lists")
    ap.add_argument("--samples", type=int, default=5, help="differing documents shown per side (default 5)")
    ap.add_argument("--skip-extraction-quality", action="store_true", help="skip the ground-truth extraction scores")
    ap.add_argument("--only", choices=["mdr", "datatrove"], default=None, help="run one side only (no comparison)")
    args = ap.parse_args(argv)

    if args.only != "mdr":
        import importlib.util
        missing = [m for m in ("datatrove", "spacy", "xxhash", "tldextract", "fasteners", "ahocorasick", "cchardet",
                               "magic") if importlib.util.find_spec(m) is None]
        if missing:
            sys.exit(f"missing for datatrove's side: {', '.join(missing)}; install with: pip install -e '.[test,bench]'")
    from pipeline.core.config import load_config
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mdr-vs-datatrove-"))
    per_warc = max(1, min(args.per_warc, -(-args.pages // (4 * args.cores))))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; {args.cores} cores for "
          f"each side; work folder {work}")
    print(f"versions: {versions()}")
    info = webgen.build(work / "input", args.pages, args.seed, per_warc, quiet=True)
    print(f"input: {webgen.describe(info)}")
    sets = mdr_overrides(args)
    cfg = load_config(None, sets)
    p = cfg.dedup_fuzzy.params()
    print(f"MinHash on both sides: {p.num_hashes} hashes = {p.bands} bands x {p.rows} rows, word {p.ngram}-grams, seed "
          f"{p.seed}; mdr --set: {' '.join(sets)}")
    dt_args = datatrove_args(cfg, work / "datatrove", info["warc_dir"], args)
    mres = dres = None
    if args.only != "datatrove":
        print("\nmdr (one process per stage, local[%d]):" % args.cores)
        mres = run_mdr(work, info["warc_dir"], sets, args.cores)
    if args.only != "mdr":
        print(f"\ndatatrove (LocalPipelineExecutor, {args.cores} workers; MinhashDedupBuckets {p.bands} tasks):")
        dres = run_datatrove(work, dt_args, info["pages"])
    if mres and dres:
        report(mres, dres, args.cores)
        compare_kept(work, webgen.load_truth(work / "input"), args.samples)
    else:
        for name, res in (("mdr", mres), ("datatrove", dres)):
            for stage in STAGES if res else ():
                ms = [res[stage]["m"]] if name == "mdr" else list(res[stage]["steps"].values())
                print(f"  {name} {stage}: {sum(m.wall_s for m in ms):.1f} s wall, {sum(m.cpu_s for m in ms):.1f} s CPU, "
                      f"in {res[stage]['in']:,}, kept {res[stage]['kept']:,}, peak PSS {max(m.peak_pss_mb for m in ms):.0f} MB")
    if not args.skip_extraction_quality:
        extraction_quality(dt_args["trafilatura"])
    print("\nnot exactly matched between the two sides: URL-list matching rules, charset decoding, trafilatura's url "
          "argument and sandbox process, lid >= vs >, mdr's line-wise corrections"
          f"{' (off in this run)' if args.no_line_corrections else ''} and language pre-screen"
          f"{' (off in this run)' if args.no_prescreen else ''}, MinHash normalization/tokenizer/hash functions and "
          "the kept representative of a cluster (see --help)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
