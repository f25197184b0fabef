"""`qunzhu openapi`: the platform's OpenAPI document exactly as embedded mode's `/openapi.json` serves it.

The gateway merges its own routes with every service's routes (`gateway.openapi.merge`); here the same
merge runs over the apps `make run` builds, without starting them (FastAPI's `.openapi()` needs no
database), in a throwaway data directory so nothing is written under ./data. The output is stable (sorted
keys, two-space indent, UTF-8, one trailing newline), so a regenerated client diffs only when the API did.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from qunzhu.services import entry


def document() -> dict[str, Any]:
    """The merged OpenAPI document of the gateway and the services behind it."""
    from gateway.openapi import merge
    from gateway.upstream import UPSTREAMS

    with tempfile.TemporaryDirectory(prefix="qunzhu-openapi-") as data_dir:
        specs = {}
        for name in UPSTREAMS:
            svc = entry(name)
            specs[name] = svc.create_app(svc.settings(data_dir=Path(data_dir))).openapi()
        gateway = entry("gateway")
        own = gateway.create_app(gateway.settings(data_dir=Path(data_dir))).openapi()
    return merge(own, specs)


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
