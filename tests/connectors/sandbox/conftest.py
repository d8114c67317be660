"""One sandbox on a loopback port for the whole session, reset before each test."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import SandboxServer

VERIFONE = {"Authorization": "Bearer sandbox-token"}
VERIFONE_BASIC = {
    "Authorization": "Basic " + base64.b64encode(b"sandbox-user:sandbox-key").decode()
}
VERIFONE_SCOPED = {"Authorization": "Bearer sandbox-scoped-token"}
SUMUP = {"Authorization": "Bearer sup_sk_sandbox"}
SUMUP_READONLY = {"Authorization": "Bearer sup_sk_sandbox_readonly"}
SUMUP_FORBIDDEN = {"Authorization": "Bearer sup_sk_sandbox_forbidden"}
ENTITY = "sandbox-entity"


def person(**extra: object) -> dict[str, object]:
    """A minimal valid Verifone ``CustomerRequest``."""
    return {
        "entity_id": ENTITY,
        "billing": {"first_name": "Ada", "last_name": "Lovelace"},
        **extra,
    }


@pytest.fixture(scope="session")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(seed=7)) as sb:
        yield sb


@pytest.fixture
def sb(server: SandboxServer) -> SandboxServer:
    """The session's sandbox, emptied and back on its start-up config."""
    server.admin.reset(config=True)
    return server


@pytest.fixture
def client(sb: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.base_url, timeout=10) as c:
        yield c
