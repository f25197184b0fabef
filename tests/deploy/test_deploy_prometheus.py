"""deploy/prometheus/prometheus.compose.yml: the jobs of prometheus.yml with compose host names; promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from qunzhu.services import DEFAULT_PORTS
from tests.deploy.support import DEPLOY, load_compose

LOCAL = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = DEPLOY / "prometheus" / "prometheus.compose.yml"


def _jobs(path) -> dict[str, list[str]]:
    config = yaml.safe_load(path.read_text())
    return {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]] for job in config["scrape_configs"]
    }


def test_same_jobs_and_rules_as_the_local_config() -> None:
    assert set(_jobs(COMPOSE)) == set(_jobs(LOCAL))
    local, compose = (yaml.safe_load(p.read_text()) for p in (LOCAL, COMPOSE))
    assert compose["rule_files"] == local["rule_files"]
    assert compose["global"] == local["global"]


def test_targets_are_compose_services_on_their_ports() -> None:
    services = load_compose()["services"]
    for job, targets in _jobs(COMPOSE).items():
        assert targets == [f"{job}:{DEFAULT_PORTS[job]}"], job
        assert job in services


def test_promtool_accepts_the_config_and_its_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: Debian's prometheus package provides it; `bash deploy/local/prereqs.sh` "
                    "(run by make test) installs it, or: sudo apt-get install prometheus", pytrace=False)
    result = subprocess.run([promtool, "check", "config", COMPOSE.name], cwd=COMPOSE.parent,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
