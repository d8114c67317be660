"""SandboxConfig: defaults, CUSTSYNC_SANDBOX_* variables, run-time changes."""

from __future__ import annotations

import pytest

from connectors.sandbox.config import FAULT_KINDS, ConfigError, SandboxConfig
from connectors.sandbox.server import config_env


def test_defaults_match_the_documented_credentials() -> None:
    config = SandboxConfig()
    assert (config.sumup_api_key, config.verifone_token) == ("sup_sk_sandbox", "sandbox-token")
    assert (config.verifone_user, config.verifone_api_key) == ("sandbox-user", "sandbox-key")
    assert config.verifone_entity == "sandbox-entity"
    assert (config.rate_limit, config.burst, config.fault_rate) == (None, 10, 0.0)
    assert config.fault_kinds == FAULT_KINDS


def test_from_env_then_overrides() -> None:
    env = {
        "CUSTSYNC_SANDBOX_RATE_LIMIT": "200",
        "CUSTSYNC_SANDBOX_BURST": "4",
        "CUSTSYNC_SANDBOX_FAULT_KINDS": "500, reset",
        "CUSTSYNC_SANDBOX_SEED": "9",
        "CUSTSYNC_SANDBOX_SUMUP_API_KEY": "sup_sk_other",
        "CUSTSYNC_SANDBOX_LATENCY_MS": "",
    }
    config = SandboxConfig.from_env(env, burst=7, seed=None)
    assert config.rate_limit == 200.0 and config.burst == 7 and config.seed == 9
    assert config.fault_kinds == ("500", "reset")
    assert config.sumup_api_key == "sup_sk_other" and config.latency_ms == 0
    assert SandboxConfig.from_env({"CUSTSYNC_SANDBOX_RATE_LIMIT": "none"}).rate_limit is None


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_limit": 0},
        {"burst": 0},
        {"fault_rate": 1.5},
        {"fault_kinds": ["boom"]},
        {"latency_ms": -1},
        {"burst": 2.5},
        {"burst": True},
        {"sumup_api_key": None},
        {"sumup_api_key": 5},
        {"unknown": 1},
    ],
)
def test_bad_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SandboxConfig().updated(changes)


def test_env_round_trip_for_child_processes() -> None:
    config = SandboxConfig(rate_limit=123.5, fault_kinds=("503",), seed=4, jitter_ms=2)
    assert SandboxConfig.from_env(config_env(config)) == config
    assert SandboxConfig.from_env(config_env(SandboxConfig())) == SandboxConfig()
