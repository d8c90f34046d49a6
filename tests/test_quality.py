"""Quality classifiers, `mdr train-quality` and the bundled demo model (no Ray here: see test_quality_stage.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "udfs" / "models" / "quality-demo.ftz"
SPAM_URL = "http://037426.cn/"  # an English spam page of the CC-MAIN-2020-34 excerpt (never trained on)


def test_preprocess_collapses_newlines_and_lowercases():
    from udfs.quality import preprocess
    assert preprocess("Hello\n\nWorld\t AGAIN ") == "hello world again"
    assert preprocess("Keep\nCase", lowercase=False) == "Keep Case"
    assert preprocess(None) == ""


def test_binary_scores_on_a_hand_counted_example():
    from pipeline.quality_training.train import binary_scores
    y = np.array([1, 1, 1, 0, 0])
    p = np.array([0.9, 0.6, 0.4, 0.7, 0.1])
    s = binary_scores(y, p, 0.5)
    # kept at 0.5: 0.9 (tp), 0.6 (tp), 0.7 (fp) -> precision 2/3, recall 2/3, keep rate 3/5
    assert (s.precision, s.recall, s.f1, s.keep_rate) == (0.6667, 0.6667, 0.6667, 0.6)
    # pairs (pos > neg): 0.9>0.7, 0.9>0.1, 0.6>0.1, 0.4>0.1 -> 4 of 6
    assert s.auc == pytest.approx(4 / 6, abs=1e-4)


def test_heldout_split_is_deterministic_and_close_to_the_share():
    from pipeline.quality_training.train import is_heldout
    groups = [f"g{i}" for i in range(5000)]
    first = [is_heldout(g, 0.2) for g in groups]
    assert first == [is_heldout(g, 0.2) for g in groups]
    assert 0.17 < sum(first) / len(first) < 0.23
    assert [is_heldout(g, 0.2, seed=2) for g in groups] != first


def test_demo_model_is_small_quantized_and_has_a_card_with_heldout_f1():
    assert DEMO.exists(), "the demo model is committed: python bench/train_default_quality_model.py rebuilds it"
    assert DEMO.stat().st_size < 5 * 1024 * 1024
    card = json.loads(DEMO.with_suffix(".card.json").read_text())
    assert card["params"]["quantize"] and card["params"]["word_ngrams"] == 2
    assert card["scores"]["f1"] >= 0.9 and card["heldout"]["docs"] > 100
    md = DEMO.with_suffix(".card.md").read_text()
    assert f"| {card['scores']['f1']} |" in md and "How it was made" in md and "cc-main-2020-34" in md


def test_fasttext_classifier_scores_the_positive_label():
    from udfs.quality import FastTextClassifier, QualityModelError
    clf = FastTextClassifier.load(None, "hq", True)
    scores, labels = clf.score(["The river flows through the valley and joins the sea near the old town.",
                                "Home | Login | Register | Cart | Privacy Policy | Terms of Use", ""])
    assert scores.shape == (3,) and ((0 <= scores) & (scores <= 1)).all()
    assert set(labels) <= {"hq", "cc"}
    flipped, _ = FastTextClassifier.load(None, "__label__cc", True).score(["Home | Login | Register"])
    assert flipped[0] == pytest.approx(1 - clf.score(["Home | Login | Register"])[0][0], abs=1e-4)
    with pytest.raises(QualityModelError, match="no label 'eli5'"):
        FastTextClassifier.load(None, "eli5", True)


def test_corrupt_and_truncated_models_fail_with_a_clear_message(tmp_path):
    from udfs.quality import FastTextClassifier, QualityModelError
    bad = tmp_path / "bad.ftz"
    bad.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(QualityModelError, match="not a fastText model"):
        FastTextClassifier.load(str(bad), "hq", True)
    cut = tmp_path / "cut.ftz"
    cut.write_bytes(DEMO.read_bytes()[:5000])
    with pytest.raises(QualityModelError, match="truncated fastText file"):  # fastText itself would loop here
        FastTextClassifier.load(str(cut), "hq", True)
    longer = tmp_path / "longer.ftz"
    longer.write_bytes(DEMO.read_bytes() + b"\0\0")
    with pytest.raises(QualityModelError, match="unexpected bytes"):
        FastTextClassifier.load(str(longer), "hq", True)
    with pytest.raises(QualityModelError, match="no such file"):
        FastTextClassifier.load(str(tmp_path / "missing.bin"), "hq", True)


def _spam_page_text() -> str:
    from pipeline.quality_training.data import warc_pages
    pages = warc_pages(shared_path("warc", "cc-main-2020-34-excerpt.warc.gz"))
    return next(p["text"] for p in pages if p["url"] == SPAM_URL)


def _heldout_wikipedia_paragraph() -> str:
    from pipeline.quality_training.data import wikitext_articles
    from pipeline.quality_training.train import is_heldout
    card = json.loads(DEMO.with_suffix(".card.json").read_text())
    share, seed = card["params"]["holdout"], card["params"]["seed"]
    for title, paras in wikitext_articles(shared_path("text", "wikitext-2-valid.txt")):
        if is_heldout(f"wiki:{title}", share, seed):
            return next(p for p in paras if len(p.split()) >= 80)
    raise AssertionError("no held-out article")


def test_default_model_ranks_heldout_wikipedia_above_a_spam_page():
    from udfs.quality import FastTextClassifier
    clf = FastTextClassifier.load(None, "hq", True)
    (wiki, spam), _ = clf.score([_heldout_wikipedia_paragraph(), _spam_page_text()])
    assert wiki > spam
    assert wiki >= 0.5 > spam  # and the default threshold separates them


def _write_jsonl(path: Path, texts: list[str], group: bool = True) -> str:
    with path.open("w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"{path.stem}-{i}", "text": t, "group": f"{path.stem}-{i // 2}"}) + "\n")
    return str(path)


def test_train_quality_writes_model_card_and_prints_scores(tmp_path, s3_server, capsys):
    """Positives from JSONL, negatives from a text file, model and card to S3; scores on the held-out split."""
    from pipeline.cli import main
    from pipeline.quality_training.data import wikitext_articles
    from pipeline.core.storage import Storage
    from udfs.quality import FastTextClassifier
    arts = wikitext_articles(shared_path("text", "wikitext-2-valid.txt"))
    pos = [p for _, paras in arts for p in paras if len(p.split()) > 40][:160]
    neg = [" | ".join(f"{w} {i}" for w in ("Home", "Login", "Sign up", "Cart", "Privacy", "Contact", "Share"))
           for i in range(80)]
    neg += [line for line in _spam_page_text().splitlines() if line.strip()] * 10
    (tmp_path / "neg.txt").write_text("\n".join(n.replace("\n", " ") for n in neg) + "\n")
    bucket = s3_server.make_bucket("train-quality")
    rc = main(["train-quality", "--positive", _write_jsonl(tmp_path / "pos.jsonl", pos), "--negative",
               str(tmp_path / "neg.txt"), "--output", f"{bucket}/m/q.ftz", "--group-column", "group",
               "--epoch", "5", "--lr", "0.1", "--min-count", "1", "--dim", "16", "--bucket", "20000", "--cutoff", "2000", "--holdout", "0.25"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "precision" in out and "recall" in out and "F1" in out and "keep rate" in out
    store = Storage()
    card = json.loads(store.read_text(f"{bucket}/m/q.card.json"))
    assert card["scores"]["n"] == card["heldout"]["docs"] > 0
    assert card["train"]["docs"] + card["heldout"]["docs"] == len(pos) + len(neg)
    assert card["scores"]["f1"] > 0.8
    assert "Held-out scores" in store.read_text(f"{bucket}/m/q.card.md")
    clf = FastTextClassifier.load(f"{bucket}/m/q.ftz", "hq", True, store)
    assert clf.score([pos[-1]])[0][0] > clf.score([neg[0]])[0][0]


def test_train_quality_refuses_a_split_without_heldout_documents(tmp_path, capsys):
    from pipeline.cli import main
    pos = _write_jsonl(tmp_path / "p.jsonl", ["good text here"] * 3)
    neg = _write_jsonl(tmp_path / "n.jsonl", ["bad text"] * 3)
    rc = main(["train-quality", "--positive", pos, "--negative", neg, "--output", str(tmp_path / "m.ftz"),
               "--holdout", "0.01"])  # a valid share that holds out none of these four groups
    assert rc == 2
    assert "no held-out documents" in capsys.readouterr().err
    assert not (tmp_path / "m.ftz").exists()
