"""Configuration: typed, documented, validated before anything runs."""
import pytest

from pipeline.core.config import Config, ConfigError, describe, load_config, to_yaml


def test_default_preset_is_refinedweb_with_published_thresholds():
    cfg = load_config()
    assert cfg.extract.langid.min_score == 0.65
    assert cfg.extract.langid.languages == ["en"]
    assert cfg.run.stages[0] == "extract"


def test_set_overrides_parse_yaml_values():
    cfg = load_config(None, ["extract.timeout_s=2.5", "extract.langid.languages=[de, fr]", "run.audit=full",
                             "extract.include_tables=false"])
    assert cfg.extract.timeout_s == 2.5
    assert cfg.extract.langid.languages == ["de", "fr"]
    assert cfg.run.audit == "full"
    assert cfg.extract.include_tables is False


@pytest.mark.parametrize("override, message", [
    ("extract.bogus=1", "unknown key extract.bogus; allowed keys in extract:"),
    ("nosuchsection.x=1", "unknown key nosuchsection"),
    ("run.audit=maybe", "run.audit: 'maybe' is not allowed; allowed values: none, sample, full"),
    ("extract.langid.min_score=1.5", "extract.langid.min_score: 1.5 is out of range; allowed: [0.0, 1.0]"),
    ("extract.timeout_s=fast", "extract.timeout_s: expected a number"),
    ("extract.include_tables=perhaps", "extract.include_tables: expected true or false"),
    ("run.stages=[extract, nope]", "run.stages[1]: 'nope' is not allowed"),
    ("noequals", "expected key=value"),
])
def test_bad_config_fails_naming_key_and_allowed_values(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value)


def test_unknown_preset_lists_available_ones():
    with pytest.raises(ConfigError, match="available presets: .*refinedweb"):
        load_config("no-such-preset")


def test_yaml_file_and_bad_yaml(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("extends: refinedweb\nextract:\n  timeout_s: 3\n")
    assert load_config(str(good)).extract.timeout_s == 3.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("extract: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    evil = tmp_path / "evil.yaml"
    evil.write_text("run: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):  # safe_load refuses Python tags
        load_config(str(evil))


def test_every_key_is_documented_and_printed():
    rows = describe(Config)
    assert len(rows) > 20
    undocumented = [k for k, _, d in rows if not d]
    assert undocumented == []
    text = to_yaml(load_config())
    for key, _, _ in rows:
        assert f"{key.split('.')[-1]}:" in text


def test_section_hash_changes_only_with_its_section():
    a, b = load_config(), load_config(None, ["run.output=elsewhere"])
    assert a.section_hash("extract") == b.section_hash("extract")
    c = load_config(None, ["extract.timeout_s=1"])
    assert a.section_hash("extract") != c.section_hash("extract")
