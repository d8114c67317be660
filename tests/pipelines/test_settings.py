from __future__ import annotations

from pathlib import Path

import pytest

from connectors.secret import Secret
from pipelines.settings import Settings, SettingsError, load_settings


def test_defaults_point_at_the_sandbox(tmp_path: Path) -> None:
    s = load_settings(env={}, config_file=tmp_path / "absent.toml")
    assert s.provider("verifone").base_url == "http://127.0.0.1:8765"
    assert s.state == Path("data/custsync.duckdb")
    assert s.provider("sumup")["api_key"] is None
    assert Settings().provider("verifone")["entity_id"] == "sandbox-entity"


def test_environment_beats_file(tmp_path: Path) -> None:
    cfg = tmp_path / "custsync.toml"
    cfg.write_text('concurrency = 4\nverifone_entity_id = "from-file"\n')
    s = load_settings(
        env={"CUSTSYNC_CONCURRENCY": "16", "CUSTSYNC_SUMUP_API_KEY": "sup_sk_x"}, config_file=cfg
    )
    assert s.concurrency == 16
    assert s.provider("verifone")["entity_id"] == "from-file"
    assert s.constants("verifone") == {"entity_id": "from-file"}
    assert isinstance(s.provider("sumup")["api_key"], Secret)
    assert "sup_sk_x" not in repr(s)


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "custsync.toml"
    cfg.write_text('sumup_api_key = "sup_sk_x"\n')
    with pytest.raises(SettingsError, match="environment"):
        load_settings(env={}, config_file=cfg)


@pytest.mark.parametrize(
    ("content", "message"),
    [("concurrency = 'many'\n", "not a valid int"), ("colour = 1\n", "unknown setting")],
)
def test_bad_settings_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "custsync.toml"
    cfg.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(env={}, config_file=cfg)


def test_overrides_ignore_none() -> None:
    s = Settings().with_overrides(concurrency=3, batch_size=None)
    assert s.concurrency == 3 and s.batch_size == Settings().batch_size


def test_an_unknown_provider_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="unknown target 'stripe': choose verifone or sumup"):
        Settings().provider("stripe")


def test_with_provider_replaces_only_given_values() -> None:
    s = Settings().with_provider("verifone", entity_id="e-2", token=None)
    assert s.provider("verifone")["entity_id"] == "e-2"
    assert s.provider("verifone").base_url == Settings().provider("verifone").base_url
