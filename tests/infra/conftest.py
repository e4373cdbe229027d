"""Fixtures for tests/infra: the program deployed under Pulumi mocks, once per config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from infra_cases import DEFAULT_RAW, WARM_RAW, Deployed
from infra_mocks import deploy

from infra import config as infra_config
from infra import program


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated (V2) classes while the mocks deserialize resources.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


@pytest.fixture(autouse=True, scope="session")
def _event_loop() -> None:
    """Pulumi's runtime needs a current event loop; tests run before these (TestClient,
    asyncio.run) may have closed or cleared the main thread's."""
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())


def _deploy(label: str, raw: Mapping[str, Any]) -> Deployed:
    cfg = infra_config.load(raw, default_name="mldr-test")
    return Deployed(label=label, cfg=cfg, result=deploy(lambda: program.build(cfg)))


@pytest.fixture(scope="session")
def default_deployed() -> Deployed:
    return _deploy("default", DEFAULT_RAW)


@pytest.fixture(scope="session")
def warm_deployed() -> Deployed:
    return _deploy("warm-standby", WARM_RAW)


@pytest.fixture(params=["default", "warm-standby"])
def deployed(request: pytest.FixtureRequest) -> Deployed:
    """Each test using this runs for the default config and for the warm-standby config."""
    name = "default_deployed" if request.param == "default" else "warm_deployed"
    return request.getfixturevalue(name)
