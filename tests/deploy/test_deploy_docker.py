"""deploy/docker: the Dockerfile's COPY sources exist and survive .dockerignore; the image's entry point."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from qunzhu.services import SERVICE_NAMES
from tests.deploy.support import DOCKERFILE, ENTRYPOINT, REPO


def _instructions() -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip().removesuffix("\\") + " "
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    out = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), shlex.split(rest) if keyword.upper() == "COPY" else [rest]))
    return out


def _copies_from_context() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from another stage)."""
    copies = []
    for keyword, args in _instructions():
        if keyword != "COPY":
            continue
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        copies.append((paths[:-1], paths[-1]))
    return copies


def _dockerignore_excludes(path: str) -> bool:
    """Whether the repository's .dockerignore leaves `path` (relative, a file) out of the build context.

    Docker's rules: patterns match the path or one of its parent directories, `**` any number of
    directories, `!` re-includes, the last matching line wins.
    """
    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + "(?:/.*)?")

    excluded = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        if regex(pattern).fullmatch(path):
            excluded = not negate
    return excluded


def _files_under(source: Path) -> list[str]:
    if source.is_file():
        return [source.relative_to(REPO).as_posix()]
    return [p.relative_to(REPO).as_posix() for p in source.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    copies = _copies_from_context()
    assert copies, "no COPY from the build context found"
    for sources, destination in copies:
        for source in sources:
            path = REPO / source
            assert path.exists(), f"COPY {source} {destination}: {source} does not exist"
            files = _files_under(path)
            assert files, f"COPY {source}: nothing to copy"
            excluded = [f for f in files if _dockerignore_excludes(f)]
            assert not excluded, f"COPY {source}: .dockerignore leaves out {excluded[:3]}"


def test_the_dockerignore_check_sees_exclusions() -> None:
    assert _dockerignore_excludes("services/membership/tests/test_membership_api.py")
    assert _dockerignore_excludes("data/bus.sqlite3")
    assert _dockerignore_excludes("services/membership/membership/__pycache__/app.cpython-311.pyc")
    assert not _dockerignore_excludes("services/membership/migrations/env.py")


def test_every_package_and_migration_history_is_in_the_image() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    roots = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    copied = {source for sources, _ in _copies_from_context() for source in sources}
    python_path = next(args[0] for kw, args in _instructions() if kw == "ENV" and "PYTHONPATH=" in args[0])
    for root in roots:
        packages = [p for p in (REPO / root).iterdir() if (p / "__init__.py").is_file()]
        assert packages, root
        for package in packages:
            assert package.relative_to(REPO).as_posix() in copied, f"{package} is not copied"
        if (REPO / root / "migrations").is_dir():
            assert f"{root}/migrations" in copied, f"{root}/migrations is not copied"
        assert f"/app/{root}" in python_path, f"/app/{root} missing from PYTHONPATH"
    for name in SERVICE_NAMES:
        assert f"services/{name}/migrations" in copied, name


def test_multi_stage_build_running_as_a_non_root_user() -> None:
    instructions = _instructions()
    stages = [args[0] for kw, args in instructions if kw == "FROM"]
    assert len(stages) >= 2, "expected a builder and a runtime stage"
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    users = [args[0] for kw, args in instructions[last_from:] if kw == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(kw == "COPY" and "--from=builder" in args for kw, args in instructions[last_from:])
    entry = [args[0] for kw, args in instructions[last_from:] if kw == "ENTRYPOINT"]
    assert entry == ['["qunzhu-entrypoint"]']


@pytest.fixture
def fake_python(tmp_path: Path) -> dict[str, str]:
    """An environment whose `python` prints its arguments instead of running anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python"
    stub.write_text('#!/bin/sh\necho "python $*"\n')
    stub.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def _entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True,
                          timeout=10, check=False)


def test_entrypoint_serves_the_named_service_on_all_interfaces(fake_python: dict[str, str]) -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    result = _entrypoint({**fake_python, "SERVICE": "content"})
    assert result.stdout.strip() == "python -m qunzhu serve content --host 0.0.0.0 --port 0"
    result = _entrypoint({**fake_python, "SERVICE": "gateway", "PORT": "9000"}, "serve")
    assert result.stdout.strip() == "python -m qunzhu serve gateway --host 0.0.0.0 --port 9000"


def test_entrypoint_migrates_and_refuses_without_a_service(fake_python: dict[str, str]) -> None:
    assert _entrypoint(fake_python, "migrate", "all").stdout.strip() == "python -m qunzhu migrate all"
    assert _entrypoint({**fake_python, "SERVICE": "membership"}, "migrate").stdout.strip() == (
        "python -m qunzhu migrate membership"
    )
    assert _entrypoint(fake_python, "migrate").returncode == 2
    assert _entrypoint(fake_python, "serve").returncode != 0


def test_the_image_layout_imports_and_migrates(tmp_path: Path) -> None:
    """Lay the runtime stage's files out as the COPYs do, then migrate every service from that tree only."""
    root = tmp_path / "app"
    for sources, destination in _copies_from_context():
        for source in sources:
            if not destination.startswith("/app/"):
                continue  # the entry point goes to /usr/local/bin
            target = root / destination.removeprefix("/app/")
            shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
    env_line = next(args[0] for kw, args in _instructions() if kw == "ENV" and "PYTHONPATH=" in args[0])
    python_path = re.search(r"PYTHONPATH=(\S+)", env_line).group(1).replace("/app/", f"{root}/")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": python_path, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in SERVICE_NAMES:
        env[f"{name.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3"
    # One interpreter (imports are the slow part): say where qunzhu came from, then `python -m qunzhu migrate all`.
    script = "import qunzhu, qunzhu.cli; print(qunzhu.__file__); qunzhu.cli.main(['migrate', 'all'])"
    migrated = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert migrated.stdout.startswith(str(root)), "modules came from the repository, not the image layout"
    for name in SERVICE_NAMES:
        assert f"{name}: migrated" in migrated.stdout
        assert (tmp_path / f"{name}.sqlite3").stat().st_size > 0
