"""run.audit: what a rejected document keeps (the report's samples per reason are drawn from it)."""
import json

from pipeline.core.dataset import reject_row

TEXT = "first line of a removed page\n" + "x" * 2000


def _rows(audit: str, rate: float, n: int = 4000) -> list[dict]:
    return [reject_row(f"doc{i}", f"https://e.example/{i}", "gopher_word_count", {"n_words": 3}, TEXT, audit, rate)
            for i in range(n)]


def test_every_reject_keeps_id_url_reason_and_scores():
    for audit in ("none", "sample", "full"):
        r = _rows(audit, 0.02, 1)[0]
        assert (r["id"], r["url"], r["reason"], json.loads(r["details"])) == \
            ("doc0", "https://e.example/0", "gopher_word_count", {"n_words": 3})


def test_audit_none_sample_full():
    assert all(r["text"] is None for r in _rows("none", 0.5))
    assert all(r["text"] == TEXT for r in _rows("full", 0.0))                  # full: every text, whole
    sampled = [r for r in _rows("sample", 0.25) if r["text"] is not None]
    assert 900 < len(sampled) < 1100                                            # the configured share
    assert all(r["text"] == TEXT[:600] for r in sampled)                         # a head of each
    again = {r["id"] for r in _rows("sample", 0.25) if r["text"] is not None}
    assert again == {r["id"] for r in sampled}                                  # the same documents every run
    assert not any(r["text"] for r in _rows("sample", 0.0))
