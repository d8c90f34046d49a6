"""The dataset card: README.md in the output root, so the data explains itself wherever it is copied.

Written from the manifests only (sources, crawl ids, stages with their parameters, counts,
languages, schema), with licence notes and how to load the data with pyarrow, pandas, Hugging Face
``datasets`` and DuckDB. The YAML header is the Hugging Face Hub's, so ``load_dataset(ROOT)`` finds
the final stage's parts by itself. The header and every loading snippet name exactly the parts the final
stage's manifest lists: a folder or glob would also read unlisted files (a failed attempt's part, a
``--force`` re-run in progress).
"""
from __future__ import annotations

import json
import re

from pipeline import __version__
from pipeline.core.storage import Storage, StorageError, join, scheme
from pipeline.reports.report import records_note

CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}", re.IGNORECASE)
MAX_SOURCES_LISTED = 20

COLUMN_DOCS = {
    "id": "stable document id (from the WARC-Record-ID; 32 hex digits)",
    "url": "the page's URL (WARC-Target-URI)",
    "domain": "host of the URL, lower case",
    "warc_date": "when Common Crawl fetched the page (WARC-Date, ISO 8601)",
    "warc_file": "the WARC file the record came from",
    "warc_record_id": "the record's WARC-Record-ID",
    "charset": "character set the HTML was decoded with",
    "html_bytes": "size of the HTTP payload in bytes",
    "text": "the main text extracted by trafilatura, after the filters' line corrections and exact-substring cuts",
    "text_chars": "length of text in characters",
    "lang": "language of the text (fastText lid.176 label)",
    "lang_score": "fastText's probability for lang",
    "gopher_n_words": "Gopher word count of the text as it entered the filter stage",
    "gopher_mean_word_len": "mean word length (characters)",
    "gopher_alpha_words_share": "share of words holding an alphabetic character",
    "gopher_dup_line_frac": "share of lines repeating an earlier line",
    "gopher_top_2_gram_char_frac": "characters covered by the most frequent word 2-gram / all characters",
    "gopher_dup_5_gram_char_frac": "characters in repeated word 5-grams / all characters",
    "line_removed_words_share": "share of words the RefinedWeb line corrections removed",
    "exact_removed_chars": "characters cut by exact-substring deduplication",
    "quality_score": "the quality classifier's score (higher is better)",
    "quality_label": "the quality classifier's top label",
}

LICENCE = """\
The documents are web pages crawled by [Common Crawl](https://commoncrawl.org); mdr keeps their main
text, URL and crawl metadata. Use of the data is subject to the
[Common Crawl Terms of Use](https://commoncrawl.org/terms-of-use), and the text of each page remains
subject to the rights of its owners: this dataset grants no licence to that content. Web-text
datasets built this way are usually published under the
[ODC-By 1.0](https://opendatacommons.org/licenses/by/1-0/) licence, which covers the compilation
(RefinedWeb and FineWeb are), and the header above says `odc-by` for that reason: change it if you
publish under other terms. Pages may contain personal data; review before publishing, and honour
removal requests by document id or URL (`mdr explain` finds a document in every stage). The mdr code
that made the dataset is Apache-2.0."""


def final_stage(stages: list[tuple[str, dict]]) -> tuple[str, dict]:
    return stages[-1]


def crawl_ids(extract: dict | None) -> list[str]:
    if extract is None:
        return []
    texts = [extract.get("input", {}).get("uri") or ""]
    texts += [i.get("file", "") for i in extract.get("stats", {}).get("inputs", [])]
    return sorted({m.upper() for t in texts for m in CRAWL_ID.findall(t)})


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
                        (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "n>1B"


def _yaml_header(final: str, parts: list[str], rows: int, langs: list[str]) -> str:
    lang_lines = "".join(f"- {lang}\n" for lang in langs if re.fullmatch(r"[a-z]{2,3}", lang)) or "- en\n"
    files = "".join(f"  - {json.dumps(f'{final}/{p}')}\n" for p in parts) or "  []\n"
    return (f"---\nlicense: odc-by\nlanguage:\n{lang_lines}pretty_name: mdr web text ({final})\n"
            f"size_categories:\n- {_size_category(rows)}\ntask_categories:\n- text-generation\n"
            f"configs:\n- config_name: default\n  data_files:\n{files}---\n")


def _committed_files(folder: str) -> str:
    """Python lines that set ``files`` to the committed parts of ``folder``: its manifest's ``parts``."""
    if scheme(folder) == "file":
        head, manifest = "", 'open(f"{folder}/_manifest.json")'
    else:
        head, manifest = "filesystem, path = fs.FileSystem.from_uri(folder)\n", \
            'filesystem.open_input_stream(f"{path}/_manifest.json")'
    return (f"folder = {json.dumps(folder)}\n{head}with {manifest} as f:\n"
            """    files = [f"{folder}/{p['path']}" for p in json.load(f)["parts"]]\n""")


def _loading(root: str, final: str) -> str:
    folder = f"{root.rstrip('/')}/{final}"
    remote = scheme(root) != "file"
    note = ("For s3:// roots, pyarrow and pandas use the ambient AWS credentials; in DuckDB run "
            "`INSTALL httpfs; LOAD httpfs;` first.\n\n" if remote else "")
    imports = "import json\n" + ("from pyarrow import fs\n" if remote else "")
    files = _committed_files(folder)
    return f"""\
## How to load

The kept documents of the last stage are the Parquet files that `{final}/_manifest.json` lists under
`parts` (paths relative to `{final}/`). Read those files, not the folder or a `part-*.parquet` glob: other
files there (a failed attempt's part, a `--force` re-run in progress) are not committed data. The header
above lists the same files for `load_dataset(ROOT)`; the snippets below read the manifest.
{note}
pyarrow:
```python
{imports}import pyarrow.dataset as ds
{files}table = ds.dataset([ds.dataset(f, format="parquet") for f in files]).to_table()
print(table.num_rows, table.column_names)
```

pandas:
```python
{imports}import pandas as pd
{files}df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
print(len(df), df.columns.tolist())
```

Hugging Face `datasets`:
```python
{imports}from datasets import load_dataset
{files}dsets = load_dataset("parquet", data_files=files, split="train")
print(dsets.num_rows, dsets.column_names)
```

DuckDB:
```python
{imports}import duckdb
{files}print(duckdb.execute("SELECT count(*), sum(length(text)) FROM read_parquet(?)", [files]).fetchall())
```

dolma / datatrove JSONL: `mdr export {root} --output OUT` writes `OUT/documents/*.jsonl.gz` with
`id`, `text` and `metadata`.
"""


PII_PLACEHOLDERS = {
    "email": "e-mail addresses became `email@example.com` or `firstname.lastname@example.org`",
    "ip": "public IPv4 addresses became one of datatrove's six placeholder addresses (`22.214.171.124`, ...) and "
          "public IPv6 addresses `2001:db8::1` or `2001:db8::2` (private, loopback and reserved ranges stay)",
    "phone": "phone numbers with a `+` country code and North American numbers became `555-555-0100`",
}


def _personal_data(pii: dict | None) -> list[str]:
    from pipeline.reports.data import pii_summary
    out = ["## Personal data\n", f"PII redaction in the filter stage: {pii_summary(pii)}."]
    if pii:
        out[-1] += (" " + "; ".join(PII_PLACEHOLDERS[k] for k in pii.get("kinds", []) if k in PII_PLACEHOLDERS)
                    + ", as datatrove's PIIFormatter does for FineWeb (`udfs/pii.py`). Names, street addresses and "
                    "other personal data are not redacted.")
    out[-1] += "\n"
    return out


def render_card(root: str, stages: list[tuple[str, dict]]) -> str:
    """The README.md text for a run whose committed stages are ``stages`` (pipeline order)."""
    final, fman = final_stage(stages)
    kept = (fman.get("profile") or {}).get("kept") or {}
    langs = sorted((kept.get("langs") or {}).items(), key=lambda kv: -kv[1])
    extract = dict(stages).get("extract")
    first_name, first = stages[0]
    out = [_yaml_header(final, [p["path"] for p in fman["parts"]], fman["rows"], [lang for lang, _ in langs])]
    out.append(f"# mdr web text: {root}\n")
    chars = f" and {kept['chars']:,} characters" if kept.get("chars") is not None else ""
    out.append(f"{fman['rows']:,} documents{chars} of web text from Common Crawl, cleaned and deduplicated "
               f"RefinedWeb-style by mdr {__version__} (stages: "
               f"{', '.join(n for n, _ in stages)}). Last stage committed {fman.get('created', '?')}. "
               f"`report.html` beside this file shows what each stage removed and why.\n")

    out.append("## Sources\n")
    inputs = (first.get("stats") or {}).get("inputs") or []
    out.append(f"- input of `{first_name}`: `{first.get('input', {}).get('uri')}`")
    if inputs:
        read = records_note(first_name, first) or f"{sum(i.get('in', 0) for i in inputs):,} documents"
        out.append(f"- {len(inputs):,} input files ({read}):")
        out += [f"  - `{i['file']}`" + (f" (failed: {i['error']})" if i.get("error") else "")
                for i in inputs[:MAX_SOURCES_LISTED]]
        if len(inputs) > MAX_SOURCES_LISTED:
            out.append(f"  - ... and {len(inputs) - MAX_SOURCES_LISTED:,} more (see `{first_name}/_manifest.json`)")
    ids = crawl_ids(extract)
    out.append(f"- Common Crawl crawl ids: {', '.join(ids) if ids else 'none found in the input paths'}\n")

    out.append("## Stages and counts\n")
    out.append("| stage | in | kept | kept % | removed (by reason) | config | seconds |")
    out.append("|---|---:|---:|---:|---|---|---:|")
    for name, man in stages:
        c = man["counts"]
        removed = ", ".join(f"{k} {v:,}" for k, v in sorted(c["removed"].items(), key=lambda kv: -kv[1])) or "-"
        pct = f"{100 * c['kept'] / c['in']:.1f}" if c["in"] else "-"
        out.append(f"| {name} | {c['in']:,} | {c['kept']:,} | {pct} | {removed} | `{man['config_hash']}` | "
                   f"{man['timings']['seconds']:,.1f} |")
    out.append("")
    out.append("Parameters of each stage (from its manifest):\n")
    for name, man in stages:
        out.append(f"<details><summary>{name}</summary>\n\n```json\n"
                   f"{json.dumps(man.get('params', {}), indent=1, sort_keys=True)}\n```\n</details>\n")

    if "filter" in dict(stages):
        out += _personal_data((dict(stages)["filter"].get("stats") or {}).get("pii"))

    out.append("## Languages\n")
    if langs:
        total = sum(n for _, n in langs)
        out.append("| language | documents | share |")
        out.append("|---|---:|---:|")
        out += [f"| {lang} | {n:,} | {100 * n / total:.1f}% |" for lang, n in langs[:30]]
    else:
        out.append("No language column in the final dataset.")
    out.append("")

    from pipeline.reports.data import RULES_LEGEND, few_words, filter_languages
    by_lang = filter_languages(stages)
    if by_lang:
        out.append("## Filter by language\n")
        out.append("Documents and characters the filter stage kept per language, and the rules it judged each "
                   f"language by ({RULES_LEGEND}).\n")
        out.append("| language | docs in | docs kept | chars in | chars kept | rules | tokenizer | min words | "
                   "mean word length | min alpha share | stop words (min) | max top 2-gram | max dup 5-gram |")
        out.append("|---|---:|---:|---:|---:|---|---|---:|---|---:|---|---:|---:|")
        for r in by_lang:
            def f(v):
                return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))
            out.append(f"| {r['lang']} | {f(r['docs_in'])} | {f(r['docs_kept'])} | {f(r['chars_in'])} | "
                       f"{f(r['chars_kept'])} | {r['rules']} | {r['tokenizer']} | {f(r['min_words'])} | "
                       f"{f(r['min_mean_word_len'])}-{f(r['max_mean_word_len'])} | {f(r['min_alpha_words_share'])} | "
                       f"{few_words(r['stop_words'])} ({f(r['min_stop_words'])}) | "
                       f"{f((r['max_top_ngram_char_frac'] or {}).get('2'))} | "
                       f"{f((r['max_dup_ngram_char_frac'] or {}).get('5'))} |")
        out.append("")

    out.append("## Schema\n")
    out.append("| column | type | meaning |")
    out.append("|---|---|---|")
    out += [f"| `{f['name']}` | {f['type']} | {COLUMN_DOCS.get(f['name'], '')} |" for f in fman.get("schema", [])]
    out.append("")
    out.append("Removed documents are listed per stage in `<stage>/_rejects/` (id, url, reason, details JSON with "
               "the scores behind the decision, and text per `run.audit`).\n")

    out.append("## Licence notes\n")
    out.append(LICENCE + "\n")
    out.append(_loading(root, final))
    return "\n".join(out)


def write_card(store: Storage, root: str) -> str:
    """Write README.md into the output root; returns its URI."""
    from pipeline.reports.data import committed_stages
    stages = committed_stages(store, root)
    if not stages:
        raise StorageError(f"{root}: no committed stage output; nothing to describe")
    uri = join(root, "README.md")
    store.write_text(uri, render_card(root, stages))
    return uri
