"""deploy/k8s: every manifest validates (kubernetes-validate, strict, offline); probes, resources, env names."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from qunzhu.services import DEFAULT_PORTS, SERVICE_NAMES
from qunzhu_common.actor import INTERNAL_KEY_ENV
from tests.deploy.support import K8S_DIR, env_prefixes, env_problems, k8s_documents

# A Kubernetes version whose schemas kubernetes-validate ships (it never downloads any).
K8S_VERSION = "1.33"
DOCS = k8s_documents()


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


@pytest.mark.parametrize(
    "doc",
    [doc for _, doc in DOCS],
    ids=[f"{path.relative_to(K8S_DIR)}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in DOCS],
)
def test_manifest_validates_strictly(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_rejects_an_unknown_field() -> None:
    deployment = copy.deepcopy(_of_kind("Deployment")[0])
    _containers(deployment)[0]["livenesProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_every_service_has_a_deployment_a_service_and_a_migration_job() -> None:
    deployments = {d["metadata"]["name"] for d in _of_kind("Deployment")}
    services = {d["metadata"]["name"]: d for d in _of_kind("Service")}
    jobs = {d["metadata"]["name"]: d for d in _of_kind("Job")}
    for name in SERVICE_NAMES:
        assert name in deployments and name in services, name
        assert services[name]["spec"]["ports"][0]["port"] == DEFAULT_PORTS[name]
        assert _containers(jobs[f"migrate-{name}"])[0]["args"] == ["migrate", name]
    assert {d["metadata"]["namespace"] for _, d in DOCS if d["kind"] != "Namespace"} == {"qunzhu"}


def test_every_deployment_has_probes_resources_and_runs_as_non_root() -> None:
    for deployment in _of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in _containers(deployment):
            port_names = {p["name"] for p in container["ports"]}
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["port"] in port_names, name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{name}: {bound}"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_jobs_have_resources_and_run_as_non_root() -> None:
    for job in _of_kind("Job"):
        assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in _containers(job):
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_services_select_their_deployment_pods() -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in _of_kind("Deployment")}
    for service in _of_kind("Service"):
        name = service["metadata"]["name"]
        assert service["spec"]["selector"].items() <= pods[name].items(), name
        # engagement-jobs has no Service and must not be behind engagement's either
        selector = service["spec"]["selector"].items()
        others = [n for n, labels in pods.items() if n != name and selector <= labels.items()]
        assert others == [], f"Service {name} also selects {others}"


def test_replicas_do_not_migrate_and_the_gateway_has_several() -> None:
    prefixes = env_prefixes()
    for deployment in _of_kind("Deployment"):
        container = _containers(deployment)[0]
        service = _env(container)["SERVICE"]["value"]
        assert _env(container)[f"{prefixes[service]}AUTO_MIGRATE"]["value"] == "false"
    gateway = next(d for d in _of_kind("Deployment") if d["metadata"]["name"] == "gateway")
    assert gateway["spec"]["replicas"] >= 2


@pytest.mark.parametrize(
    ("worker", "main", "switch", "on", "off"),
    [
        # engagement's periodic jobs are meant for one replica ("one replica should run it")
        ("engagement-jobs", "engagement", "ENGAGEMENT_JOBS_INTERVAL_S", "3600", "0"),
        # bot actions: the per-group / per-platform rate limits are token buckets in the process
        ("gateway-actions", "gateway", "GATEWAY_RUN_ACTIONS", "true", "false"),
    ],
)
def test_singleton_work_runs_in_one_pod(worker: str, main: str, switch: str, on: str, off: str) -> None:
    deployments = {d["metadata"]["name"]: d for d in _of_kind("Deployment")}
    single = deployments[worker]
    # Recreate: the old pod is gone before the new one starts, so a rollout never runs two of them.
    assert single["spec"]["replicas"] == 1 and single["spec"]["strategy"]["type"] == "Recreate"
    assert _env(_containers(single)[0])[switch]["value"] == on
    assert _env(_containers(deployments[main])[0])[switch]["value"] == off
    assert worker not in {s["metadata"]["name"] for s in _of_kind("Service")}


def test_env_var_names_are_settings_fields() -> None:
    for kind in ("Deployment", "Job"):
        for doc in _of_kind(kind):
            container = _containers(doc)[0]
            names = set(_env(container))
            if kind == "Deployment":
                services = (_env(container)["SERVICE"]["value"],)
            else:
                services = (container["args"][1],)
            assert env_problems(names, services=services) == [], doc["metadata"]["name"]


def test_config_and_secret_references_resolve() -> None:
    (config,) = _of_kind("ConfigMap")
    (secret,) = _of_kind("Secret")  # examples/secret.example.yaml: the keys operators must provide
    for _, doc in DOCS:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for item in _containers(doc)[0].get("env", []):
            source = item.get("valueFrom", {})
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                assert ref["name"] == config["metadata"]["name"] and ref["key"] in config["data"], item
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], item
            else:
                assert "value" in item, item


def test_no_real_secret_values_are_committed() -> None:
    for path, doc in DOCS:
        if doc["kind"] != "Secret":
            continue
        assert path.parent.name == "examples", f"{path}: Secrets belong to operators, not to deploy/k8s"
        assert all("CHANGE-ME" in value for value in doc["stringData"].values()), path


def test_gateway_reaches_the_services_by_service_name_and_port() -> None:
    gateway = next(d for d in _of_kind("Deployment") if d["metadata"]["name"] == "gateway")
    env = _env(_containers(gateway)[0])
    for name in ("membership", "content", "engagement"):
        url = urlsplit(env[f"GATEWAY_{name.upper()}_URL"]["value"])
        assert (url.hostname, url.port) == (name, DEFAULT_PORTS[name])
    assert "optional" not in env["GATEWAY_SECRET_KEY"]["valueFrom"]["secretKeyRef"]  # replicas share one key


def test_every_deployment_requires_the_shared_internal_key() -> None:
    # Pods have their own filesystems: without one shared key each would generate its own internal.key and
    # refuse the gateway's actor assertions. So: one required Secret key, referenced by every Deployment.
    deployments = _of_kind("Deployment")
    services = {_env(_containers(d)[0])["SERVICE"]["value"] for d in deployments}
    assert services == set(SERVICE_NAMES)
    for deployment in deployments:
        item = _env(_containers(deployment)[0]).get(INTERNAL_KEY_ENV)
        assert item is not None, deployment["metadata"]["name"]
        ref = item["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("qunzhu-secrets", "internal-key"), deployment["metadata"]["name"]
        assert not ref.get("optional", False), deployment["metadata"]["name"]


def test_manifests_are_plain_yaml_files() -> None:
    files = sorted(K8S_DIR.rglob("*"))
    assert all(p.suffix == ".yaml" for p in files if p.is_file())
    for path in files:
        if path.is_file():
            assert all(isinstance(doc, dict) for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
