"""`mdr train-quality`: a quality classifier from positive and negative documents, with held-out scores and a card.

DCLM recipe for fastText: lowercase, newlines collapsed, word bigrams, softmax over two labels
(``hq`` vs ``cc``, as DCLM's fasttext-oh-eli5). A deterministic share of documents (by a hash of
their group, e.g. the article they come from) is held out; precision/recall/F1 and the keep rate at
the chosen threshold are measured on it and written to a model card beside the model.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from pipeline.core.dataset import iter_part, open_input, part_schema
from pipeline.core.storage import Storage, basename
from udfs.quality import head_dict, logistic_head, preprocess

TEXT_SUFFIXES = (".txt", ".txt.gz")


@dataclass
class Doc:
    id: str
    group: str
    text: str
    source: str


@dataclass
class TrainParams:
    backend: str = "fasttext"
    positive_label: str = "hq"
    negative_label: str = "cc"
    holdout: float = 0.2
    threshold: float = 0.5
    seed: int = 1
    lowercase: bool = True
    epoch: int = 20
    lr: float = 0.2
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 2
    bucket: int = 500_000
    cutoff: int = 50_000
    quantize: bool = True
    group_column: str | None = None
    train_seed: int | None = None  # the seed fastText trained with (--seed, or the next ones after a NaN)


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    keep_rate: float
    threshold: float
    auc: float
    best_f1: float
    best_f1_threshold: float
    n: int
    positives: int
    negatives: int


@dataclass
class TrainReport:
    params: TrainParams
    sources: list[dict] = field(default_factory=list)
    train: dict = field(default_factory=dict)
    heldout: dict = field(default_factory=dict)
    scores: Scores | None = None
    model_bytes: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------- data

def load_documents(store: Storage, uri: str, group_column: str | None = None) -> list[Doc]:
    """Documents of a dataset URI (committed stage output, Parquet, JSONL) or a text file (one document a line)."""
    if uri.endswith(TEXT_SUFFIXES):
        data = store.read_bytes(uri)
        if uri.endswith(".gz"):
            data = gzip.decompress(data)
        lines = [x for x in data.decode("utf-8").splitlines() if x.strip()]
        name = basename(uri)
        return [Doc(f"{name}:{i}", f"{name}:{i}", x, uri) for i, x in enumerate(lines)]
    docs = []
    for part in open_input(store, uri).parts:
        names = part_schema(store, part).names
        cols = ["id", "text"] + ([group_column] if group_column and group_column in names else [])
        for t in iter_part(store, part, cols, root=uri):
            ids, texts = t.column("id").to_pylist(), t.column("text").to_pylist()
            groups = t.column(group_column).to_pylist() if len(cols) > 2 else ids
            docs.extend(Doc(str(i), str(g), x, uri) for i, g, x in zip(ids, groups, texts) if x and x.strip())
    return docs


def is_heldout(group: str, share: float, seed: int = 1) -> bool:
    """Deterministic split by group: every document of a held-out group is held out."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest(), "big")
    return h / 2 ** 64 < share


# --------------------------------------------------------------------------- scores

def binary_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> Scores:
    """Precision/recall/F1 of the positive class at ``threshold``, keep rate, ROC AUC and the best-F1 threshold."""
    def prf(t: float) -> tuple[float, float, float]:
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        prec = tp / pred.sum() if pred.sum() else 0.0
        rec = tp / (y == 1).sum() if (y == 1).sum() else 0.0
        return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    prec, rec, f1 = prf(threshold)
    best = max(((prf(t)[2], t) for t in np.round(np.arange(0.05, 0.96, 0.05), 2)), key=lambda x: (x[0], -abs(x[1] - 0.5)))
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    npos, nneg = int((y == 1).sum()), int((y == 0).sum())
    auc = (ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg) if npos and nneg else float("nan")
    return Scores(round(prec, 4), round(rec, 4), round(f1, 4), round(float((p >= threshold).mean()), 4), threshold,
                  round(float(auc), 4), round(best[0], 4), float(best[1]), len(y), npos, nneg)


# --------------------------------------------------------------------------- training

def _fasttext_file(docs: Sequence[tuple[str, str]], lowercase: bool) -> str:
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="mdr-train-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for label, text in docs:
            f.write(f"__label__{label} {preprocess(text, lowercase)}\n")
    return path


def train_fasttext(train: Sequence[tuple[str, str]], p: TrainParams, out_path: str):
    """Train (one thread: the same data give the same model), quantize for .ftz, save to a local path.

    The training itself runs in a fresh child process: fastText's trainer aborts the whole process on some
    errors, and in a long-lived process that has run Spark and Ray (``mdr run`` then ``train-quality`` in one
    Python, as the tests do) it was seen to diverge to NaN on data it trains on cleanly in a fresh process."""
    import multiprocessing

    import fasttext
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        seed = pool.apply(_train_fasttext_child, (list(train), p, out_path))
    p.train_seed = seed
    return fasttext.load_model(out_path)


def _train_fasttext_child(train: Sequence[tuple[str, str]], p: TrainParams, out_path: str) -> int:
    import fasttext
    path = _fasttext_file(train, p.lowercase)
    try:
        for attempt in range(4):  # fastText hits NaN on some small sets with some seeds: the next seed, recorded
            try:
                model = fasttext.train_supervised(input=path, lr=p.lr, epoch=p.epoch, dim=p.dim,
                                                  wordNgrams=p.word_ngrams, minCount=p.min_count, bucket=p.bucket,
                                                  loss="softmax", thread=1, seed=p.seed + attempt, verbose=0)
                p.train_seed = p.seed + attempt
                break
            except RuntimeError as e:
                error = e
        else:
            raise ValueError(f"fastText training failed 4 times ({error}); with little data try another --lr or --dim")
        if p.quantize:
            model.quantize(input=path, retrain=True, qnorm=True, cutoff=p.cutoff, thread=1, verbose=0)
        model.save_model(out_path)
    finally:
        os.unlink(path)
    return p.train_seed


def train(store: Storage, positives: list[str], negatives: list[str], output: str, p: TrainParams,
          notes: str = "") -> TrainReport:
    """Load, split, train, score on the held-out split, write the model and its card (``<output>.card.md/json``)."""
    from udfs.quality import FastTextClassifier, EmbeddingClassifier, load_encoder
    t0 = time.time()
    rep = TrainReport(p)
    data: list[tuple[Doc, int]] = []
    for label, uris in ((1, positives), (0, negatives)):
        for uri in uris:
            docs = load_documents(store, uri, p.group_column)
            if not docs:
                raise ValueError(f"{uri}: no documents with text")
            held = sum(is_heldout(d.group, p.holdout, p.seed) for d in docs)
            rep.sources.append({"uri": uri, "label": p.positive_label if label else p.negative_label,
                                "docs": len(docs), "heldout": held})
            data.extend((d, label) for d in docs)
    tr = [(d, y) for d, y in data if not is_heldout(d.group, p.holdout, p.seed)]
    te = [(d, y) for d, y in data if is_heldout(d.group, p.holdout, p.seed)]
    if not te or len({y for _, y in tr}) < 2:
        raise ValueError("the split left no held-out documents or only one class to train on; add documents "
                         "or raise --holdout")
    rep.train = {"docs": len(tr), "positives": sum(y for _, y in tr)}
    rep.heldout = {"docs": len(te), "positives": sum(y for _, y in te)}
    labels = (p.negative_label, p.positive_label)
    suffix = os.path.splitext(output)[1] or (".ftz" if p.backend == "fasttext" else ".json")
    fd, local = tempfile.mkstemp(suffix=suffix, prefix="mdr-model-")
    os.close(fd)
    try:
        if p.backend == "fasttext":
            model = train_fasttext([(labels[y], d.text) for d, y in tr], p, local)
            clf = FastTextClassifier(model, p.positive_label, p.lowercase, output)
            probs, _ = clf.score([d.text for d, _ in te])
        else:
            encoder = load_encoder(None)
            from udfs.quality import embed
            x = embed(encoder, [d.text for d, _ in tr], normalize=True)
            w, b = logistic_head(x.astype(np.float64), np.array([y for _, y in tr], dtype=np.float64))
            head = head_dict(w, b, labels, normalize=True, encoder="all-MiniLM-L6-v2")
            with open(local, "w") as f:
                json.dump(head, f)
            probs, _ = EmbeddingClassifier(encoder, head, p.positive_label).score([d.text for d, _ in te])
        rep.scores = binary_scores(np.array([y for _, y in te]), probs, p.threshold)
        with open(local, "rb") as f:
            blob = f.read()
        store.write_bytes(output, blob)
        rep.model_bytes = len(blob)
    finally:
        os.unlink(local)
    rep.seconds = round(time.time() - t0, 1)
    card = model_card(output, rep, notes)
    store.write_text(card_uri(output, ".md"), card)
    store.write_text(card_uri(output, ".json"), json.dumps(report_dict(rep), indent=1))
    return rep


def card_uri(model_uri: str, ext: str) -> str:
    return os.path.splitext(model_uri)[0] + ".card" + ext


def report_dict(rep: TrainReport) -> dict:
    return {"format": "mdr.quality_card/1", "params": asdict(rep.params), "sources": rep.sources, "train": rep.train,
            "heldout": rep.heldout, "scores": asdict(rep.scores) if rep.scores else None,
            "model_bytes": rep.model_bytes, "seconds": rep.seconds}


def model_card(output: str, rep: TrainReport, notes: str = "") -> str:
    p, s = rep.params, rep.scores
    src = "\n".join(f"| `{x['uri']}` | {x['label']} | {x['docs']} | {x['heldout']} |" for x in rep.sources)
    if p.backend == "fasttext":
        how = (f"fastText supervised, softmax over `{p.negative_label}`/`{p.positive_label}`: lr {p.lr}, epoch {p.epoch}, "
               f"dim {p.dim}, wordNgrams {p.word_ngrams}, minCount {p.min_count}, bucket {p.bucket}, one thread, "
               f"seed {p.train_seed}" + (f"; quantized (qnorm, retrain, cutoff {p.cutoff})" if p.quantize else ""))
    else:
        how = "all-MiniLM-L6-v2 sentence embeddings (normalized) + class-balanced L2 logistic regression"
    return f"""# Quality model card: `{basename(output)}`

{how}. Preprocessing: {"lowercased, " if p.lowercase else ""}newlines and whitespace runs collapsed to one space.
Score: probability of `{p.positive_label}`; the pipeline keeps documents with `quality_score >= quality.threshold`.

## Data
| source | label | documents | held out |
|---|---|---|---|
{src}

Train: {rep.train['docs']} documents ({rep.train['positives']} positive). Held out: {rep.heldout['docs']} documents
({rep.heldout['positives']} positive), every document of a group whose hash (seed {p.seed}) falls under {p.holdout}.

## Held-out scores
| threshold | precision | recall | F1 | keep rate | ROC AUC | best F1 (threshold) |
|---|---|---|---|---|---|---|
| {s.threshold} | {s.precision} | {s.recall} | {s.f1} | {s.keep_rate} | {s.auc} | {s.best_f1} ({s.best_f1_threshold}) |

Model size: {rep.model_bytes:,} bytes. Training took {rep.seconds} s.
{notes}"""


def print_report(output: str, rep: TrainReport, out=None) -> None:
    out = out or sys.stdout
    s = rep.scores
    print(f"trained {rep.params.backend} model on {rep.train['docs']} documents; held out {rep.heldout['docs']} "
          f"({rep.heldout['positives']} positive)", file=out)
    print(f"held-out @ threshold {s.threshold}: precision {s.precision:.3f}  recall {s.recall:.3f}  F1 {s.f1:.3f}  "
          f"keep rate {s.keep_rate:.1%}  ROC AUC {s.auc:.3f}  (best F1 {s.best_f1:.3f} at {s.best_f1_threshold})",
          file=out)
    print(f"wrote {output} ({rep.model_bytes:,} bytes) and {card_uri(output, '.md')}", file=out)
