"""Settings: one documented file, environment overrides, validation that names the key."""

from __future__ import annotations

import re
import tomllib

import pytest

from retrieval.errors import ConfigError
from retrieval.settings import DEFAULT_CONFIG_FILE, Settings, load_settings


def test_config_file_documents_every_setting_with_its_default():
    text = DEFAULT_CONFIG_FILE.read_text()
    written = tomllib.loads(text)
    defaults = Settings.model_construct().model_dump()
    for section, fields in Settings.model_fields.items():
        assert f"[{section}]" in text
        for key in fields.annotation.model_fields:
            active = written.get(section, {})
            assert key in active or re.search(rf"^# {key} = ", text, re.M), f"{section}.{key} is not documented"
            if key in active and section != "index" and key != "corpus":
                assert active[key] == defaults[section][key], f"{section}.{key} differs from the code default"


def test_environment_overrides_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("QABOT_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("QABOT_RETRIEVAL_TOP_K", "9")
    settings = load_settings()
    assert settings.index_dir == tmp_path / "idx"
    assert settings.retrieval.top_k == 9


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("QABOT_RETRIEVAL_TOP_K", "9")
    assert load_settings(retrieval={"top_k": 3}).retrieval.top_k == 3


def test_relative_paths_in_a_config_file_are_relative_to_it(tmp_path):
    config = tmp_path / "conf" / "qabot.toml"
    config.parent.mkdir()
    config.write_text('[index]\ndir = "../my-index"\ncorpus = ["articles"]\n')
    settings = load_settings(config)
    assert settings.index_dir == (tmp_path / "my-index").resolve()
    assert settings.index.corpus == [(tmp_path / "conf" / "articles").resolve()]


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("[answer]\nmin_reader_score = 3\n", "answer.min_reader_score"),
        ("[retrieval]\ntop_k = 0\n", "retrieval.top_k"),
        ("[telegram]\nbase_url = 'ftp://x'\n", "telegram.base_url"),
        ("[models]\nunknown_key = 1\n", "models.unknown_key"),
    ],
)
def test_invalid_values_name_the_key_and_reason(tmp_path, content, key):
    config = tmp_path / "qabot.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert key in str(error.value)
    assert error.value.exit_code == 2


def test_broken_toml_is_a_config_error(tmp_path):
    config = tmp_path / "qabot.toml"
    config.write_text("[index\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config)
