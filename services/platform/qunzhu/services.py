"""The four services by name: how to build each app, its settings and its migrations."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

SERVICE_NAMES = ("membership", "content", "engagement", "gateway")
DEFAULT_PORTS = {"gateway": 8000, "membership": 8001, "content": 8002, "engagement": 8003}


@dataclass(frozen=True)
class ServiceEntry:
    name: str

    @property
    def app_module(self) -> Any:
        return importlib.import_module(f"{self.name}.app")

    def settings(self, **overrides: Any) -> Any:
        settings_module = importlib.import_module(f"{self.name}.settings")
        cls = next(
            getattr(settings_module, attr)
            for attr in dir(settings_module)
            if attr.endswith("Settings") and attr != "ServiceSettings"
        )
        return cls(**overrides)

    def create_app(self, settings: Any = None, **kwargs: Any) -> Any:
        return self.app_module.create_app(settings, **kwargs)


def entry(name: str) -> ServiceEntry:
    if name not in SERVICE_NAMES:
        raise SystemExit(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}")
    return ServiceEntry(name)
