"""The TypeScript client (clients/typescript): committed output matches the gateway's OpenAPI today (the drift
check), and the built client runs a real flow against embedded mode under node's own test runner.

Node.js 18+ and npm are required: a missing tool fails with what to install, it is never skipped.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.embedded.test_embedded_process import EmbeddedProcess
from tests.integration.stack import ROOT

CLIENT = ROOT / "clients" / "typescript"
GENERATED = ("openapi.json", "src/schema.d.ts")
DRIFT = "the gateway's OpenAPI changed: run `make client` and commit clients/typescript"
OWNER, STRANGER = "telegram:42", "telegram:99"
INSTALL_STAMP = CLIENT / "node_modules" / ".qunzhu-package-lock.sha256"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: the TypeScript client's tests need Node.js 18+ and npm. `bash .ci/run` "
                    "installs them (as root), or: sudo apt-get install nodejs npm", pytrace=False)
    return path


def _run(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=CLIENT, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, f"{what} failed (exit {result.returncode}):\n{result.stdout[-6000:]}\n" \
                                   f"{result.stderr[-4000:]}"


def test_a_missing_node_or_npm_fails_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match=r"npm not found: .*sudo apt-get install nodejs npm"):
        _tool("npm")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """`npm ci` from the committed lockfile, once per lockfile (a stamp in node_modules records which)."""
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(re.match(r"v(\d+)", version).group(1))  # type: ignore[union-attr]
    if major < 18:
        pytest.fail(f"Node.js {version} is too old: the client and its tests need Node.js 18+", pytrace=False)
    lock = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not INSTALL_STAMP.is_file() or INSTALL_STAMP.read_text().strip() != lock:
        _ok(_run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], timeout=290),
            "npm ci in clients/typescript")
        INSTALL_STAMP.write_text(lock + "\n")
    return CLIENT / "node_modules"


def _export(target: Path, *, hash_seed: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qunzhu", "openapi", "--output", str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONHASHSEED": hash_seed})


@pytest.fixture(scope="module")
def regenerated(node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openapi.json and src/schema.d.ts made afresh, as `make client` makes them, in a temporary directory."""
    out = tmp_path_factory.mktemp("client")
    (out / "src").mkdir()
    _ok(_export(out / "openapi.json", hash_seed="1"), "python -m qunzhu openapi")
    _ok(_run([_tool("node"), "scripts/generate.mjs", str(out / "openapi.json"), str(out / "src" / "schema.d.ts")],
             timeout=300), "scripts/generate.mjs (openapi-typescript)")
    return out


def test_the_committed_client_is_generated_from_todays_openapi(regenerated: Path) -> None:
    """The drift check: fails when a route or schema changed and clients/typescript was not regenerated."""
    stale = []
    for name in GENERATED:
        committed = (CLIENT / name).read_text(encoding="utf-8") if (CLIENT / name).is_file() else ""
        fresh = (regenerated / name).read_text(encoding="utf-8")
        if committed != fresh:
            diff = list(difflib.unified_diff(committed.splitlines(), fresh.splitlines(), f"committed/{name}",
                                             f"regenerated/{name}", lineterm="", n=1))
            stale.append(f"--- {name}: {len(diff)} diff lines; first ones:\n" + "\n".join(diff[:30]))
    if stale:
        pytest.fail(DRIFT + "\n\n" + "\n\n".join(stale), pytrace=False)


def test_regeneration_is_stable(regenerated: Path, tmp_path: Path) -> None:
    """Sorted keys, fixed indent, one trailing newline, the same bytes from another process (another hash
    seed: no set or dict order leaks in), so the drift check fails only when the API changed."""
    text = (regenerated / "openapi.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    _ok(_export(tmp_path / "again.json", hash_seed="2"), "python -m qunzhu openapi")
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == text


def readme_examples() -> list[str]:
    """The ```ts blocks of the README's section on the TypeScript client."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Front ends: the TypeScript client", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```ts\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def test_the_readme_examples_compile_against_the_client(node_modules: Path) -> None:
    """The README's web and mini-program examples are type-checked against the built client's types (real
    paths, parameters and fields), importing it by its package name as an app would; the mini-program one
    also against WeChat's own typings (miniprogram-api-typings: `wx`, `Page`), so `wxRequestFetch(wx)` must
    accept the real `wx`."""
    examples = readme_examples()
    assert len(examples) >= 2, "the README's TypeScript client section lost its ```ts examples"
    assert any("wxRequestFetch(wx" in e for e in examples), "the README lost its mini-program example"
    npm = _tool("npm")
    _ok(_run([npm, "run", "--silent", "build"], timeout=300), "npm run build (tsc)")
    check = CLIENT / ".readme-check"  # inside the package, so "@qunzhu/client" resolves to it (self-reference)
    shutil.rmtree(check, ignore_errors=True)
    check.mkdir()
    try:
        for i, example in enumerate(examples):
            (check / f"example{i}.ts").write_text(example, encoding="utf-8")
            (check / f"tsconfig{i}.json").write_text(json.dumps({
                "extends": "../tsconfig.json",
                "compilerOptions": {"noEmit": True, "rootDir": ".", "noUnusedLocals": False,
                                    "types": ["miniprogram-api-typings"] if "wx" in example else []},
                "files": [f"example{i}.ts"], "include": [],
            }))
            _ok(_run([str(node_modules / ".bin" / "tsc"), "-p", str(check / f"tsconfig{i}.json")], timeout=300),
                f"tsc over the README's TypeScript example {i + 1}")
    finally:
        shutil.rmtree(check, ignore_errors=True)


def _mint(data_dir: Path, person: str) -> str:
    result = subprocess.run([sys.executable, "-m", "qunzhu", "token", "--person", person, "--data-dir", str(data_dir)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedProcess]:
    platform = EmbeddedProcess(tmp_path_factory.mktemp("embedded") / "data")
    platform.start()
    try:
        yield platform
    finally:
        try:
            platform.stop(signal.SIGINT)
        except subprocess.TimeoutExpired:
            assert platform.proc is not None
            platform.proc.kill()
            platform.proc.wait(timeout=30)


def test_the_export_is_what_embedded_mode_serves(embedded: EmbeddedProcess, regenerated: Path) -> None:
    served = httpx.get(embedded.url + "/openapi.json", timeout=30).json()
    exported = json.loads((regenerated / "openapi.json").read_text(encoding="utf-8"))
    assert "x-unavailable-services" not in served, served["x-unavailable-services"]
    differing = []
    for part, served_part, exported_part in (("path", served["paths"], exported["paths"]),
                                             ("schema", served["components"]["schemas"],
                                              exported["components"]["schemas"])):
        differing += [f"{part} {name}" for name in sorted(set(served_part) | set(exported_part))
                      if served_part.get(name) != exported_part.get(name)]
    assert served == exported, f"`qunzhu openapi` differs from the served /openapi.json: {differing[:20]}"


def test_the_built_client_runs_the_first_hour_under_node_test(node_modules: Path, embedded: EmbeddedProcess) -> None:
    """Built with tsc, its tests type-checked against the generated types, then `node --test`: community,
    plan, connector, a signed chat message, the leaderboard, 402 on a paywalled post; and the same client over
    a `wx.request` stand-in with no fetch globals (a mini-program)."""
    npm = _tool("npm")
    _ok(_run([npm, "run", "--silent", "build"], timeout=300), "npm run build (tsc)")
    _ok(_run([npm, "run", "--silent", "typecheck"], timeout=300), "npm run typecheck (tsc over test/*.mjs)")
    tests = sorted(str(p.relative_to(CLIENT)) for p in (CLIENT / "test").glob("*.test.mjs"))
    assert len(tests) >= 2, tests
    result = _run([_tool("node"), "--test", "--test-reporter=tap", *tests], timeout=300, env={
        "QUNZHU_BASE_URL": embedded.url,
        "QUNZHU_OWNER_ID": OWNER,
        "QUNZHU_OWNER_TOKEN": _mint(embedded.data_dir, OWNER),
        "QUNZHU_STRANGER_TOKEN": _mint(embedded.data_dir, STRANGER),
    })
    _ok(result, "node --test " + " ".join(tests))
    summary = dict(re.findall(r"^# (tests|pass|fail|skipped|cancelled|todo) (\d+)$", result.stdout, re.MULTILINE))
    assert summary.get("fail") == "0" and summary.get("skipped") == "0" and int(summary.get("pass", 0)) >= 4, \
        result.stdout[-4000:]
