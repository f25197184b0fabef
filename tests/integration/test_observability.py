"""Dashboards and alerts against a real Prometheus scraping the real services.

Every Grafana panel query must parse and return data; every alert expression must parse and its rule
group load healthy; promtool accepts the configuration and the rules.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.integration.actions import create_community
from tests.integration.probes import produce
from tests.integration.stack import ROOT, Stack, free_port

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: .ci/run installs Debian's prometheus package", pytrace=False)
    return path


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((f"{dashboard['title']} / {panel['title']}", expr))
    return queries


def alert_rules() -> list[tuple[str, str]]:
    rules = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return rules


def test_promtool_accepts_config_and_rules() -> None:
    promtool = _binary("promtool")
    for args in (["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                 ["check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml")))]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_generated_from_their_source() -> None:
    built = subprocess.run(
        ["python", "-c", "import sys; sys.path.insert(0, 'deploy/grafana'); import build_dashboards as b; "
         "import json; print(json.dumps({d.uid: d.render() for d in b.DASHBOARDS}))"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    expected = json.loads(built.stdout)
    on_disk = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASHBOARDS}
    assert on_disk == expected, "run: python deploy/grafana/build_dashboards.py"


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [stack[job["job_name"]].url.removeprefix("http://")]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [_binary("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
         f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (directory / "prometheus.log").read_text()[-3000:]
            try:
                targets = httpx.get(url + "/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
                if len(targets) == 4 and all(t["health"] == "up" for t in targets):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped all four services"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _traffic(stack: Stack) -> None:
    """Some of everything the dashboards show: 2xx, 4xx, events produced and consumed, a dead letter."""
    async def run() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(5):
                await create_community(client, stack["membership"].url)
                await client.get(stack["gateway"].url + f"/api/v1/communities/{uuid.uuid4()}")
                await client.post(stack["membership"].url + "/communities", json={"name": ""})
        await produce(stack.kafka.bootstrap, "membership.events.v1", [(b"poison", b"{not json")])

    asyncio.run(run())


def _query(url: str, expr: str) -> dict:
    response = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()


def test_every_panel_query_parses_and_returns_data(stack: Stack, prometheus: str) -> None:
    _traffic(stack)
    queries = panel_queries()
    assert len(queries) >= 10
    deadline = time.monotonic() + 60
    while True:
        empty = []
        for title, expr in queries:
            answer = _query(prometheus, expr)
            assert answer["status"] == "success", (title, expr, answer)
            if not answer["data"]["result"]:
                empty.append((title, expr))
        if not empty:
            break
        assert time.monotonic() < deadline, f"panels without data: {empty}"
        _traffic(stack)
        time.sleep(2)


def test_dashboards_and_alerts_only_name_metrics_that_exist(stack: Stack, prometheus: str) -> None:
    names = set(httpx.get(prometheus + "/api/v1/label/__name__/values", timeout=10).json()["data"])
    exprs = [expr for _, expr in panel_queries()] + [expr for _, expr in alert_rules()]
    for expr in exprs:
        for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
            assert any(re.fullmatch(pattern, n) for n in names), f"no metric matches {pattern!r} in {expr}"
        for name in re.findall(r"\b(qunzhu_[a-z_]+)\b", expr):
            assert name in names, f"{name} does not exist (in {expr})"


def test_every_alert_expression_parses_and_its_group_loads(prometheus: str) -> None:
    for alert, expr in alert_rules():
        answer = _query(prometheus, expr)
        assert answer["status"] == "success", (alert, answer)
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(prometheus + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
        if set(loaded) >= {name for name, _ in alert_rules()} and all(
            rule.get("health") in ("ok", "unknown") for rule in loaded.values()
        ):
            break
        assert time.monotonic() < deadline, loaded
        time.sleep(0.5)
    assert all(rule["health"] != "err" for rule in loaded.values())
