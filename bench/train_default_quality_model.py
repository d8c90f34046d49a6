"""Rebuild the bundled demo quality model (udfs/models/quality-demo.ftz) from ../shared/data with `mdr train-quality`.

    python bench/train_default_quality_model.py [--shared ../shared/data] [--output udfs/models/quality-demo.ftz]

The training sets are written to a temporary folder (the shared files are read, never copied into the
repository); see pipeline/quality_training/data.py for what each set holds. Training is single-threaded and
seeded, so the same data give the same model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOTES = """
## How it was made
Built by `python bench/train_default_quality_model.py` from the real data in `../shared/data`
(see `pipeline/quality_training/data.py`), then `mdr train-quality --group-column group` with the parameters above:

- `hq` (positive): WikiText-2 validation articles (60 Wikipedia Good/Featured articles, detokenized, `<unk>`
  dropped, cut into documents of about 150-600 words), and the human-labelled article bodies of
  news-articles-181 (scrapinghub article-extraction-benchmark).
- `cc` (negative): the boilerplate of the same 181 news pages (every visible text fragment of the HTML that is not
  in the article body: menus, footers, cookie and subscription notices, related links), and the trafilatura main
  text of the 2008 archive.org crawl and the 2024 dolma sample pages (random crawl pages, as DCLM's negatives are).
- Held out: every document of a group (Wikipedia article or page URL) whose hash falls under the held-out share.
- `cc-main-2020-34-excerpt.warc.gz` is not used at all: the tests score its spam pages with this model.

## Limits
Demo grade: about a thousand documents from a few sources, so it learns "encyclopedic or news prose vs. navigation
and assorted web pages" and not much more. English only: the pipeline runs it after language ID, and its scores
on other languages (whose words it has never seen) mean nothing. Replace it with your own model for production (`mdr train-quality`
on your own positives and negatives, or DCLM's `fasttext-oh-eli5` with `quality.model_uri` and
`quality.lowercase=false`).
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="the shared real data folder")
    ap.add_argument("--output", default=str(ROOT / "udfs" / "models" / "quality-demo.ftz"))
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    if not shared.exists():
        print(f"{shared} is absent: the demo model is trained from the shared real data", file=sys.stderr)
        return 2
    from pipeline.cli import main as mdr
    from pipeline.quality_training.data import build_sets
    sets = build_sets(shared)
    output = str(Path(args.output).resolve())
    with tempfile.TemporaryDirectory(prefix="mdr-quality-data-") as tmp:
        paths = {}
        for name, rows in sets.items():
            paths[name] = f"{name}.jsonl"  # relative, so the model card names the set, not a temporary path
            with (Path(tmp) / paths[name]).open("w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            print(f"{name}: {len(rows)} documents", file=sys.stderr)
        (Path(tmp) / "notes.md").write_text(NOTES)
        cmd = ["train-quality", "--output", output, "--group-column", "group", "--notes", "notes.md",
               "--bucket", "200000", "--cutoff", "20000"]
        for name, path in paths.items():
            cmd += ["--positive" if name.startswith("positives") else "--negative", path]
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            return mdr(cmd)
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    sys.exit(main())
