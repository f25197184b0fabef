"""Helpers of the deploy tests: paths, YAML loading, compose interpolation, and the settings' env names."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from qunzhu.services import SERVICE_NAMES
from qunzhu_common.actor import INTERNAL_KEY_ENV

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
K8S_DIR = DEPLOY / "k8s"

# Variables the image's entry point reads (deploy/docker/entrypoint.sh), not pydantic settings.
ENTRYPOINT_VARS = frozenset({"SERVICE", "PORT", "HOST"})
# Variables every service reads without its prefix (qunzhu_common), not fields of a settings class.
SHARED_VARS = frozenset({INTERNAL_KEY_ENV})

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}")


class MissingVariable(ValueError):
    """A `${NAME:?message}` whose variable is unset or empty: compose refuses the file with `message`."""


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose-style `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`.

    `env` is the environment (default: empty, so defaults only); a required variable missing from it
    raises MissingVariable, as `docker compose` fails with the error text.
    """
    env = env or {}

    def one(m: re.Match[str]) -> str:
        name, colon, op, arg = m.groups()
        present = name in env and (env[name] != "" or not colon)
        if present:
            return env[name]
        if op == "?":
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return arg or ""

    return _INTERPOLATION.sub(one, value)


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def render_compose(env: dict[str, str]) -> dict[str, Any]:
    """The compose file with every string interpolated from `env`, as `docker compose config` would."""
    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(load_compose())


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        docs.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def settings_class(service: str) -> type:
    module = importlib.import_module(f"{service}.settings")
    return next(
        getattr(module, name) for name in dir(module) if name.endswith("Settings") and name != "ServiceSettings"
    )


def env_prefixes() -> dict[str, str]:
    """Service name -> its environment prefix (MEMBERSHIP_, …), as the settings class declares it."""
    return {name: settings_class(name).model_config["env_prefix"] for name in SERVICE_NAMES}


def settings_env_names(service: str) -> frozenset[str]:
    cls = settings_class(service)
    prefix = cls.model_config["env_prefix"]
    return frozenset(f"{prefix}{field}".upper() for field in cls.model_fields)


def env_problems(names: list[str] | set[str], *, services: tuple[str, ...]) -> list[str]:
    """Variables a qunzhu container sets that no settings field (of `services`), the entry point nor
    qunzhu_common (SHARED_VARS) reads.

    A variable with another service's prefix is a problem too: that container would ignore it.
    """
    known = set(ENTRYPOINT_VARS | SHARED_VARS)
    for service in services:
        known |= settings_env_names(service)
    return sorted(name for name in names if name not in known)
