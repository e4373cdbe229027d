"""The DR dashboard in a real browser, against `make up` (scripts/up.sh): a headless Chromium logs in
through Airflow's login form, opens the dashboard from the UI's navigation, sees the active region
and the sandbox's replication lag, and, after a failover through the CLI, the new active region.

Screenshots are kept in `test-artifacts/` (git-ignored). Needs Debian's `chromium`; `.ci/run`
installs it, elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mldr.sandbox.location import ENV_FILE, read_env_file
from tests.e2e.browser import Chromium, chromium_path

# Heavy (~95 s: an `airflow standalone` and Chromium): `make test-heavy` runs it. What the page
# shows and who may see it are tested without a browser in tests/unit/test_dashboard.py.
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.heavy,
    pytest.mark.skipif(
        chromium_path() is None,
        reason="needs Debian's chromium (apt-get install -y chromium; .ci/run installs it)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
LOGIN, PASSWORD = "dr-owner", "browser-test-password"


@dataclass(frozen=True)
class Stack:
    url: str
    sandbox_dir: Path
    env: dict[str, str]

    def mldr(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / ".venv" / "bin" / "mldr"), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the test session's own sandbox and Airflow settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MLDR_")) and k not in ("PYTEST_CURRENT_TEST",)
    }
    return {**env, **extra}


def script(name: str, env: dict[str, str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / name)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`make up` in a directory of its own on a free port; `make down` afterwards, whatever happened."""
    sandbox_dir = tmp_path_factory.mktemp("make-up") / "sandbox"
    port = free_port()
    env = clean_env(
        MLDR_SANDBOX_DIR=str(sandbox_dir),
        MLDR_AIRFLOW_PORT=str(port),
        MLDR_AIRFLOW_USER=LOGIN,
        MLDR_AIRFLOW_PASSWORD=PASSWORD,
        # Airflow's API server starts in about a minute, much later on a busy machine
        MLDR_UP_TIMEOUT=os.environ.get("MLDR_UP_TIMEOUT", "420"),
    )
    try:
        up = script("up.sh", env, timeout=float(env["MLDR_UP_TIMEOUT"]) + 300)  # + the sandbox
        assert up.returncode == 0, f"make up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        url = f"http://localhost:{port}"
        assert f"{url}/" in up.stdout and f"{LOGIN} / {PASSWORD}" in up.stdout, up.stdout
        yield Stack(url=url, sandbox_dir=sandbox_dir, env=env)
    finally:
        down = script("down.sh", env, timeout=180)
        assert down.returncode == 0, f"make down failed:\n{down.stdout}\n{down.stderr}"
        pid_file = sandbox_dir / "airflow.pid"
        assert not pid_file.exists(), "make down left airflow running"


IN_FRAME = """(() => {{
  const frame = document.querySelector('iframe');
  const doc = frame && frame.contentDocument;
  if (!doc || doc.readyState !== 'complete') return null;
  return ({expression});
}})()"""


def frame(expression: str) -> str:
    """`expression` evaluated against the dashboard's document (`doc`) inside the Airflow UI."""
    return IN_FRAME.format(expression=expression)


ACTIVE_REGION = frame(
    "doc.getElementById('active-region') && doc.getElementById('active-region').textContent"
)
LAG_CELLS = frame(
    "Array.from(doc.querySelectorAll('tr[data-dataset] td.lag')).map("
    "td => [td.parentElement.dataset.dataset, td.dataset.value])"
)


def latest_lag(stack: Stack) -> dict[str, str]:
    """{dataset: lag seconds} of the newest replication-lag report in the sandbox, via the CLI's own
    library and the sandbox's connections."""
    script = (
        "import json; from mldr.cloud.aws.cloud import AwsCloud; "
        "from mldr.topology import load_topology; "
        "from mldr.reports import latest_reports; t = load_topology(use_airflow=False); "
        "r = latest_reports(AwsCloud.from_environment(t), t, 'replication-lag', 1)[0]; "
        "print(json.dumps({d['name']: d['lag_seconds'] for d in r.document['datasets']}))"
    )
    env = dict(stack.env)
    env.update(read_env_file(stack.sandbox_dir / ENV_FILE))
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {name: f"{lag:.3f}" for name, lag in json.loads(out.stdout).items() if lag is not None}


def test_dashboard_shows_the_active_region_and_lag_and_follows_a_failover(stack: Stack) -> None:
    expected_lag = latest_lag(stack)
    assert expected_lag, "make up measures the replication lag once"
    with Chromium(width=1440, height=1400, timeout=60) as browser:
        # log in through Airflow's own login form
        browser.goto(f"{stack.url}/")
        browser.wait_for("location.pathname.startsWith('/auth/login')", what="the login page")
        browser.type_into("input[name=username]", LOGIN)
        browser.type_into("input[name=password]", PASSWORD)
        browser.wait_for("!document.querySelector('button[type=submit]').disabled", what="the login button")
        browser.evaluate("document.querySelector('button[type=submit]').click()")
        browser.wait_for("document.cookie.includes('_token=')", what="the session cookie")

        # the dashboard, from the navigation entry the plugin adds
        browser.goto(f"{stack.url}/")
        nav = browser.wait_for(
            "Array.from(document.querySelectorAll('a'))"
            ".map(a => [a.textContent.trim(), a.getAttribute('href')])"
            ".find(([text]) => text.includes('DR dashboard'))",
            what="the DR dashboard entry in the navigation",
        )
        assert nav[1].rstrip("/").endswith("plugin/dr-dashboard"), nav
        browser.goto(f"{stack.url}/plugin/dr-dashboard")
        assert browser.wait_for(ACTIVE_REGION, timeout=60, what="the active region") == "us-east-1"
        shown = dict(browser.wait_for(LAG_CELLS, what="the lag values"))
        assert shown == expected_lag, "the lag the sandbox measured, per dataset"
        assert browser.evaluate(frame("doc.querySelectorAll('svg[id^=lag-]').length")) == len(expected_lag)
        browser.screenshot(ARTIFACTS / "dr-dashboard.png")

        # the report link the CLI prints (Airflow's base URL, from the sandbox's airflow.env) opens
        # the stored report for the signed-in person
        lag = stack.mldr("lag", "--dataset", "features")
        assert lag.returncode in (0, 1), lag.stdout + lag.stderr
        links = [
            line.removeprefix("report: ") for line in lag.stdout.splitlines() if line.startswith("report: ")
        ]
        assert len(links) == 1 and links[0].startswith(f"{stack.url}/mldr/reports/replication-lag/"), (
            lag.stdout
        )
        assert "report (us-east-1): s3://" in lag.stdout, "the s3:// copies are still named"
        browser.goto(links[0])
        browser.wait_for(
            "document.body !== null && document.body.textContent.includes('features')", what="the lag report"
        )
        browser.screenshot(ARTIFACTS / "dr-dashboard-report-link.png")
        browser.goto(f"{stack.url}/plugin/dr-dashboard")  # back to the dashboard for the failover
        assert browser.wait_for(ACTIVE_REGION, timeout=60, what="the active region") == "us-east-1"

        # fail over with the CLI (the break-glass path); the dashboard follows
        failover = stack.mldr(
            "failover", "--to", "us-west-2", "--mode", "planned", "--reason", "browser test failover", "--yes"
        )
        assert failover.returncode == 0, failover.stdout + failover.stderr
        deadline = time.monotonic() + 60
        region = None
        while region != "us-west-2":
            assert time.monotonic() < deadline, f"the dashboard still shows {region} after the failover"
            browser.evaluate("document.querySelector('iframe').contentWindow.location.reload()")
            time.sleep(1.5)
            region = browser.wait_for(ACTIVE_REGION, what="the active region after the failover")
        assert browser.evaluate(frame("doc.getElementById('fencing-token').textContent")) == "1"
        operations = browser.evaluate(frame("doc.querySelectorAll('tr.operation').length"))
        assert operations >= 1, "the failover is listed under recent operations"
        browser.screenshot(ARTIFACTS / "dr-dashboard-after-failover.png")
