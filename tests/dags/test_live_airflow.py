"""A real Airflow: api-server, scheduler and dag-processor on a free loopback port.

Triggers ``relief_analysis`` through the REST API v2 with a conf, waits for success and
reads that run's results from the warehouse; a bad conf is refused with HTTP 400 naming
the param. Every process started here is killed (process group) in a ``finally``.

Skip it locally with ``RELIEF_SKIP_LIVE_AIRFLOW=1`` (``make test RELIEF_SKIP_LIVE_AIRFLOW=1``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dags.conftest import AIRFLOW, airflow_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.live_airflow,
    pytest.mark.skipif(
        os.environ.get("RELIEF_SKIP_LIVE_AIRFLOW") == "1",
        reason="RELIEF_SKIP_LIVE_AIRFLOW=1: live Airflow test skipped",
    ),
]

START_TIMEOUT = 90
RUN_TIMEOUT = 150


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Api:
    base: str
    token: str = ""

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if self.token else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text or b"{}")
            except json.JSONDecodeError:
                return exc.code, {"detail": text.decode(errors="replace")}


def _wait(what: str, check, timeout: float, logs: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(1)
    tails = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log"))
    )
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def _stop(processes: list[subprocess.Popen]) -> None:
    """Kill each started process group: TERM, then KILL what is left."""
    for proc in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def core_warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite warehouse with core data loaded by the nightly stages."""
    from pipeline import stages
    from pipeline.config import Settings
    from pipeline.synth import write_delivery

    root = tmp_path_factory.mktemp("live_wh")
    landing = root / "landing"
    write_delivery(landing / "delivery-001", patients=250, seed=21)
    settings = Settings(warehouse_url=f"sqlite:///{root / 'warehouse.db'}", demo=True)
    run_id = stages.begin(settings, trigger="test")
    stages.ingest(settings, run_id, landing)
    stages.validate(settings, run_id)
    return settings.warehouse_url


@pytest.fixture(scope="module")
def live_airflow(airflow_home: Path, core_warehouse: str) -> Iterator[Api]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = airflow_home / "live-logs"
    logs.mkdir(exist_ok=True)
    env = airflow_env(
        airflow_home,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base}/execution/",
        AIRFLOW__API__BASE_URL=base,
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        RELIEF_DEMO="1",
        RELIEF_WAREHOUSE_URL=core_warehouse,
        RELIEF_REPORT_DIR=str(airflow_home / "reports"),
    )
    commands = {
        "api-server": [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": [AIRFLOW, "scheduler"],
        "dag-processor": [AIRFLOW, "dag-processor"],
    }
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        api = Api(base)
        _wait(
            "the api-server",
            lambda: api.call("GET", "/api/v2/monitor/health")[0] == 200,
            START_TIMEOUT,
            logs,
        )
        api.token = api.call("GET", "/auth/token")[1]["access_token"]
        _wait(
            "relief_analysis to be parsed",
            lambda: api.call("GET", "/api/v2/dags/relief_analysis")[0] == 200,
            START_TIMEOUT,
            logs,
        )
        status, body = api.call("PATCH", "/api/v2/dags/relief_analysis", {"is_paused": False})
        assert status == 200, body
        yield api
    finally:
        _stop(processes)


def test_bad_conf_is_refused_naming_the_field(live_airflow: Api) -> None:
    status, body = live_airflow.call(
        "POST",
        "/api/v2/dags/relief_analysis/dagRuns",
        {"logical_date": None, "conf": {"routes": ["IV", "intrathecal"]}},
    )
    assert status == 400, body
    assert "routes" in json.dumps(body)
    status, body = live_airflow.call(
        "POST",
        "/api/v2/dags/relief_analysis/dagRuns",
        {"logical_date": None, "conf": {"conditions": ["x'); DROP TABLE core__patients; --"]}},
    )
    assert status == 400 and "conditions" in json.dumps(body), body


def test_trigger_with_conf_runs_and_writes_its_results(
    live_airflow: Api, core_warehouse: str
) -> None:
    from pipeline.stages import relief_run_id
    from pipeline.warehouse import Warehouse

    conf = {
        "routes": ["IV", "IM"],
        "response_threshold": "50%",
        "horizon_days": 60,
        "strata": ["route"],
        "models": ["km", "cox"],
    }
    status, body = live_airflow.call(
        "POST", "/api/v2/dags/relief_analysis/dagRuns", {"logical_date": None, "conf": conf}
    )
    assert status == 200, body
    dag_run_id = body["dag_run_id"]
    path = f"/api/v2/dags/relief_analysis/dagRuns/{urllib.request.quote(dag_run_id, safe='')}"
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    state = _wait(
        "the analysis run to finish",
        lambda: (
            (s := live_airflow.call("GET", path)[1].get("state")) in ("success", "failed") and s
        ),
        RUN_TIMEOUT,
        logs,
    )
    if state != "success":
        _, tis = live_airflow.call("GET", path + "/taskInstances")
        pytest.fail(f"analysis run ended {state}: {json.dumps(tis)[:3000]}")

    wh = Warehouse(core_warehouse)
    run_id = relief_run_id("a", dag_run_id)
    runs = wh.read("results", "model_runs")
    row = runs.set_index("run_id").loc[run_id]
    assert row.status == "success" and row.trigger == "analyst" and row.dag_run_id == dag_run_id
    recorded = json.loads(row.parameters)["analysis"]
    assert recorded["cohort"]["routes"] == ["IV", "IM"]
    assert recorded["outcome"]["response_threshold"] == 0.5
    episodes = wh.read("analysis", "episodes", wh.table("analysis", "episodes").c.run_id == run_id)
    assert len(episodes) and set(episodes.route) <= {"IV", "IM"}
    km = wh.read("results", "km_curves", wh.table("results", "km_curves").c.run_id == run_id)
    assert set(km.grouping) == {"all", "route"}
    rmst = wh.read("results", "rmst", wh.table("results", "rmst").c.run_id == run_id)
    assert rmst.empty  # not chosen
