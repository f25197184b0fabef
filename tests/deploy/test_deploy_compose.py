"""deploy/compose.yaml: Compose Specification schema, mounted files, health checks, ports, env names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from qunzhu.services import DEFAULT_PORTS, SERVICE_NAMES
from qunzhu_common.actor import INTERNAL_KEY_ENV
from tests.deploy.support import (
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    MissingVariable,
    env_prefixes,
    env_problems,
    interpolate,
    load_compose,
    render_compose,
)

QUNZHU_SERVICES = SERVICE_NAMES  # compose service names = service names


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    # The Compose Specification schema vendored in check-jsonschema: no network needed.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = _check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    compose = load_compose()
    compose["services"]["gateway"]["healthcheck"]["intervall"] = "5s"  # a typo the schema must catch
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    result = _check_compose_schema(broken)
    assert result.returncode != 0
    assert "intervall" in result.stdout + result.stderr


def _image_services(compose: dict) -> dict[str, dict]:
    """Services running the qunzhu image (built from deploy/docker/Dockerfile)."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_the_four_services_and_a_migration_run_the_qunzhu_image() -> None:
    images = _image_services(load_compose())
    assert set(images) == {*QUNZHU_SERVICES, "migrate"}
    for name, svc in images.items():
        context = (COMPOSE_FILE.parent / svc["build"]["context"]).resolve()
        assert context == REPO, name
        assert (context / svc["build"]["dockerfile"]).is_file(), name


def test_every_mounted_file_and_the_build_files_exist() -> None:
    compose = load_compose()
    checked = 0
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):  # a bind mount; named volumes are declared below
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} does not exist"
                checked += 1
            else:
                assert source in compose.get("volumes", {}), f"{name}: undeclared volume {source}"
    assert checked >= 5  # postgres-init, prometheus config + rules, grafana provisioning + dashboards


def test_every_long_running_service_has_a_healthcheck() -> None:
    compose = load_compose()
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":  # one-off jobs (migrate): compose waits for their exit instead
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_service_healthchecks_probe_readyz_on_the_service_port() -> None:
    compose = load_compose()
    for name in QUNZHU_SERVICES:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert f"127.0.0.1:{DEFAULT_PORTS[name]}/readyz" in test, name


def test_ports_are_published_on_loopback_only() -> None:
    compose = load_compose()
    published = 0
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert interpolate(str(port)).startswith("127.0.0.1:"), f"{name}: {port}"
            published += 1
    assert published >= 6


def test_services_start_after_infrastructure_and_migrations() -> None:
    compose = load_compose()
    for name in QUNZHU_SERVICES:
        deps = compose["services"][name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    migrate = compose["services"]["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["command"] == ["migrate", "all"]
    assert migrate["restart"] == "no"


def test_replicas_do_not_migrate_at_startup() -> None:
    compose = load_compose()
    prefixes = env_prefixes()
    for name in QUNZHU_SERVICES:
        env = compose["services"][name]["environment"]
        assert env[f"{prefixes[name]}AUTO_MIGRATE"] == "false", name
        assert env[f"{prefixes[name]}BUS"] == "kafka", name


def test_env_var_names_are_settings_fields() -> None:
    compose = load_compose()
    for name, svc in _image_services(compose).items():
        services = QUNZHU_SERVICES if name == "migrate" else (svc["environment"]["SERVICE"],)
        assert env_problems(set(svc["environment"]), services=services) == [], name


def test_the_env_check_catches_a_typo_and_a_foreign_prefix() -> None:
    names = {"SERVICE", "MEMBERSHIP_DATABSE_URL", "CONTENT_BUS", "MEMBERSHIP_BUS"}
    assert env_problems(names, services=("membership",)) == ["CONTENT_BUS", "MEMBERSHIP_DATABSE_URL"]


def test_each_database_url_names_a_database_the_init_script_creates() -> None:
    compose = load_compose()
    postgres = compose["services"]["postgres"]
    created = set(postgres["environment"]["QUNZHU_DATABASES"].split())
    assert "QUNZHU_DATABASES" in (DEPLOY / "docker" / "postgres-init" / "10-qunzhu-databases.sh").read_text()
    assert any(v.endswith(":/docker-entrypoint-initdb.d:ro") for v in postgres["volumes"])
    prefixes = env_prefixes()
    used = set()
    for name, svc in _image_services(compose).items():
        for service in QUNZHU_SERVICES if name == "migrate" else (name,):
            url = urlsplit(interpolate(svc["environment"][f"{prefixes[service]}DATABASE_URL"]))
            assert url.scheme == "postgresql+asyncpg" and url.hostname == "postgres", url
            used.add(url.path.lstrip("/"))
    assert used == created
    assert len(used) == len(QUNZHU_SERVICES)  # one database per service


def test_every_service_requires_the_one_shared_internal_key() -> None:
    # Each container has its own filesystem: a generated <data_dir>/internal.key would differ per service and
    # every actor assertion would be refused. So the variable is required (`:?`, no default) by all four.
    compose = load_compose()
    for name in QUNZHU_SERVICES:
        value = compose["services"][name]["environment"][INTERNAL_KEY_ENV]
        assert re.fullmatch(rf"\$\{{{INTERNAL_KEY_ENV}:\?[^}}]+\}}", value), f"{name}: {value}"
    key = "k" * 64
    rendered = render_compose({INTERNAL_KEY_ENV: key})
    assert {rendered["services"][name]["environment"][INTERNAL_KEY_ENV] for name in QUNZHU_SERVICES} == {key}


@pytest.mark.parametrize("env", [{}, {INTERNAL_KEY_ENV: ""}], ids=["unset", "empty"])
def test_compose_refuses_to_render_without_the_internal_key(env: dict[str, str]) -> None:
    with pytest.raises(MissingVariable, match=f"{INTERNAL_KEY_ENV}.*deploy/README.md"):
        render_compose(env)


def test_the_interpolation_helper_follows_compose() -> None:
    assert interpolate("${A:-x}/${A-y}/${B}", {"A": ""}) == "x//"
    assert interpolate("${A:?no A}", {"A": "1"}) == "1"
    assert interpolate("${A?no A}", {"A": ""}) == ""
    with pytest.raises(MissingVariable, match="no A"):
        interpolate("${A?no A}", {})


def _composecheck() -> str:
    """compose-go, the loader docker compose uses, built by deploy/local/composecheck.sh (no Docker needed)."""
    found = subprocess.run(["bash", str(REPO / "deploy/local/composecheck.sh"), "path"], capture_output=True,
                           text=True, timeout=30, check=False)
    if found.returncode != 0:
        pytest.fail("composecheck is not built: run `bash deploy/local/composecheck.sh fetch` "
                    "(make test does, through deploy/local/prereqs.sh)", pytrace=False)
    return found.stdout.strip()


def test_compose_itself_requires_the_internal_key(tmp_path: Path) -> None:
    """Loaded by compose-go as `docker compose config` loads it: no key, no project."""
    env_file = tmp_path / "empty.env"  # not deploy/.env, which may hold an operator's key
    env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if k != INTERNAL_KEY_ENV}
    command = [_composecheck(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE)]
    refused = subprocess.run(command, env=base, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and INTERNAL_KEY_ENV in refused.stderr, refused.stderr
    accepted = subprocess.run(command, env={**base, INTERNAL_KEY_ENV: "k" * 64}, capture_output=True,
                              text=True, timeout=60, check=False)
    assert accepted.returncode == 0, accepted.stderr
    project = yaml.safe_load(accepted.stdout)
    assert set(QUNZHU_SERVICES) <= set(project["services"])
    assert project["services"]["gateway"]["environment"][INTERNAL_KEY_ENV] == "k" * 64


def test_gateway_reaches_the_services_by_compose_name_and_port() -> None:
    env = load_compose()["services"]["gateway"]["environment"]
    for name in ("membership", "content", "engagement"):
        url = urlsplit(env[f"GATEWAY_{name.upper()}_URL"])
        assert (url.hostname, url.port) == (name, DEFAULT_PORTS[name])


def test_kafka_runs_in_kraft_mode_from_an_official_image() -> None:
    kafka = load_compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    services = load_compose()["services"]
    bootstrap = {services[n]["environment"][f"{p}KAFKA_BOOTSTRAP_SERVERS"] for n, p in env_prefixes().items()}
    assert bootstrap == {"kafka:9092"}
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_grafana_mounts_dashboards_where_provisioning_looks() -> None:
    compose = load_compose()
    grafana = compose["services"]["grafana"]
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/qunzhu.yml").read_text())
    wanted = {p["options"]["path"] for p in provider["providers"]}
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./grafana/dashboards"] in wanted
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "${PROMETHEUS_URL" in datasource
    url = urlsplit(grafana["environment"]["PROMETHEUS_URL"])
    assert url.hostname in compose["services"] and url.port == 9090


def test_prometheus_mounts_its_compose_config_with_the_rules_beside_it() -> None:
    prometheus = load_compose()["services"]["prometheus"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in prometheus["volumes"]}
    assert mounts["./prometheus/prometheus.compose.yml"] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # rule_files are relative to the config file: the rules directory must sit beside it in the container.
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.compose.yml").read_text())
    (pattern,) = config["rule_files"]
    assert mounts["./prometheus/rules"] == f"/etc/prometheus/{pattern.split('/')[0]}"


def test_grafana_datasource_url_uses_syntax_grafana_expands() -> None:
    # Grafana (pkg/services/provisioning/values) runs os.ExpandEnv: only $NAME and ${NAME}.
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    for source in datasources["datasources"]:
        for name in re.findall(r"\$\{([^}]*)\}", source["url"]):
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"Grafana cannot expand ${{{name}}}"
