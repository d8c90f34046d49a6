"""The language pre-screen before extraction: visible text, its decisions on real-language pages, hostile markup."""
from __future__ import annotations

import time

import pytest

from udfs.prescreen import PrescreenRule, prescreen, visible_text

FR = ("La ville a inauguré mardi une nouvelle médiathèque dans l'ancien marché couvert. Les travaux ont duré trois "
      "ans et ont coûté près de douze millions d'euros, financés en partie par la région. Le maire a rappelé que le "
      "bâtiment accueillera aussi des ateliers pour les enfants et une salle de concert ouverte aux associations.")
EN = ("The city opened a new library on Tuesday in the old covered market. The work took three years and cost almost "
      "twelve million euros, paid for in part by the region. The mayor said the building will also host workshops "
      "for children and a concert hall open to local groups.")


def page(body: str, title: str = "News", lang: str = "en") -> str:
    return (f"<!DOCTYPE html><html lang='{lang}'><head><title>{title}</title><style>p {{ color: red }}</style>"
            f"<script>var tracking = 'ignore me entirely';</script></head><body><!-- a comment -->"
            f"<nav><a href='/'>Home</a></nav><article><p>{body}</p></article></body></html>")


@pytest.fixture(scope="module")
def lid():
    from udfs.langid import default_model_path, load_model
    return load_model(default_model_path())


def test_visible_text_keeps_title_and_text_and_drops_code_comments_and_entities():
    text = visible_text(page("Caf&eacute; &amp; cr&egrave;me <b>br&ucirc;l&eacute;e</b>", title="Menu &ndash; today"))
    assert text == "Menu – today Home Café & crème brûlée"
    assert "tracking" not in text and "color" not in text and "comment" not in text


def test_visible_text_is_cut_to_the_configured_length():
    assert len(visible_text(page("word " * 5000), max_chars=500)) == 500


@pytest.mark.parametrize("bad", ["<script>" * 100_000, "<!--" * 100_000, "<" * 300_000, "<title>" * 50_000,
                                 "<a " * 100_000, "<style>x" + "</styl" * 50_000])
def test_hostile_markup_takes_linear_time(bad):
    t0 = time.perf_counter()
    visible_text(bad)
    assert time.perf_counter() - t0 < 0.5


def test_unclosed_script_hides_the_rest_as_a_browser_would():
    assert visible_text("<p>before</p><script>never closed <p>after</p>") == "before"


def test_confident_other_language_is_dropped_with_its_evidence(lid):
    ev = prescreen(page(FR, title="Une médiathèque", lang="fr"), lid, ("en",))
    assert ev is not None and ev["lang"] == "fr" and ev["lang_score"] >= PrescreenRule().min_other
    assert ev["target_score"] < PrescreenRule().max_target


def test_target_language_short_mixed_or_unconfigured_pages_go_on_to_extraction(lid):
    assert prescreen(page(EN), lid, ("en",)) is None
    assert prescreen(page(FR, lang="fr"), lid, ("fr",)) is None
    assert prescreen(page(FR, lang="fr"), lid, ("en", "fr")) is None
    assert prescreen(page("Bonjour à tous."), lid, ("en",)) is None  # too little text to judge
    assert prescreen(page(FR + " " + EN), lid, ("en",)) is None  # half English: the exact check decides
    assert prescreen(page(FR), lid, ()) is None  # no language filter: nothing to pre-screen


def test_extraction_counts_prescreened_pages_with_a_reason(lid, tmp_path):
    """process_warc: a French page is dropped as lang_prescreen before trafilatura runs; off, it is lang_mismatch."""
    from tests.warcgen import write_pages
    from udfs.extract import ExtractSettings, process_warc

    class Sink:
        def __init__(self):
            self.kept, self.dropped = [], []

        def keep(self, row):
            self.kept.append(row)

        def drop(self, reason, doc_id, url=None, details=None, text=None):
            self.dropped.append((reason, details))

        def fail(self, error):
            raise AssertionError(error)

    path = write_pages(str(tmp_path / "t.warc.gz"), [("https://example.fr/a", page(FR * 2, lang="fr").encode()),
                                                      ("https://example.com/b", page(EN * 2).encode())]).path
    for on, reason in ((True, "lang_prescreen"), (False, "lang_mismatch")):
        sink = Sink()
        with open(path, "rb") as f:
            stats = process_warc(f, path, ExtractSettings(), sink, None, lid, ("en",), 0.65, prescreen=on)
        assert [r for r, _ in sink.dropped] == [reason] and len(sink.kept) == 1
        assert sink.dropped[0][1]["lang"] == "fr"
        assert stats["prescreen_dropped"] == (1 if on else 0)
