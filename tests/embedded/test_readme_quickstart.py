"""The README's quick start, run as written: every ```bash block marked `<!-- tested: quickstart -->`, in order,
in one bash (so the variables of one block reach the next), against embedded mode started here on a free
loopback port with its own data directory. The blocks read the gateway's address from QZ and `make token`
reads the key file from QUNZHU_DATA_DIR, both with the defaults `make run` uses; nothing else is changed.

curl, jq, openssl and make are prerequisites of the tests (deploy/local/prereqs.sh installs them): a missing
one fails the test, it is never skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.embedded.test_embedded_process import EmbeddedProcess
from tests.integration.stack import ROOT

README = ROOT / "README.md"
MARKER = "<!-- tested: quickstart -->"
# A marker is a line of its own (prose may name it in backquotes without marking anything).
MARKER_LINE = re.compile(r"^" + re.escape(MARKER) + r"[ \t]*$", re.MULTILINE)
BLOCK = re.compile(r"^" + re.escape(MARKER) + r"[ \t]*\n```bash\n(.*?)\n```", re.DOTALL | re.MULTILINE)
DONE = "::qunzhu-readme-block-done::"
OWNER = "telegram:42"


def marked_blocks(text: str) -> list[str]:
    blocks = BLOCK.findall(text)
    assert len(blocks) == len(MARKER_LINE.findall(text)), f"every {MARKER} must be followed by a ```bash block"
    return blocks


def test_the_marked_blocks_are_found() -> None:
    blocks = marked_blocks(README.read_text(encoding="utf-8"))
    steps = "\n".join(blocks)
    # community → plan → connector → a signed chat message → leaderboard, in that order
    order = ["make -s token", "/api/v1/communities\"", "/plans", "/connectors", "webhook-signature", "/leaderboard"]
    positions = [steps.find(step) for step in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions


def _tools() -> None:
    for tool in ("bash", "curl", "jq", "openssl", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: the README's quick start needs it; `bash deploy/local/prereqs.sh` "
                        f"(run by make test) installs it, or: sudo apt-get install {tool}", pytrace=False)


def test_the_quick_start_goes_all_the_way(tmp_path: Path) -> None:
    _tools()
    blocks = marked_blocks(README.read_text(encoding="utf-8"))
    script = "set -euo pipefail\n" + "".join(f"{block}\necho '{DONE}{i}'\n" for i, block in enumerate(blocks))
    platform = EmbeddedProcess(tmp_path / "data")
    platform.start()
    # As in a user's terminal: not inside make (no sub-make flags), no production keys (make token refuses).
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GATEWAY_SECRET_KEY", "GATEWAY_JWT_SECRET"}}
    env |= {"QZ": platform.url, "QUNZHU_DATA_DIR": str(platform.data_dir)}
    try:
        result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=240, stdin=subprocess.DEVNULL)
    finally:
        platform.stop(signal.SIGTERM)
    done = [int(n) for n in re.findall(re.escape(DONE) + r"(\d+)", result.stdout)]
    assert done == list(range(len(done))), done
    if result.returncode != 0 or len(done) != len(blocks):
        failed = len(done)
        pytest.fail(f"README quick start block {failed + 1} of {len(blocks)} failed (exit {result.returncode}):\n"
                    f"{blocks[failed] if failed < len(blocks) else ''}\n--- stdout\n{result.stdout}\n"
                    f"--- stderr\n{result.stderr}\n--- embedded log (tail)\n"
                    f"{platform.log.read_text(errors='replace')[-3000:]}", pytrace=False)
    # the last block prints the leaderboard's rows, one JSON object a line: the owner's message scored
    last = result.stdout.rsplit(f"{DONE}{len(blocks) - 2}\n", 1)[1]
    rows = [json.loads(line) for line in last.splitlines() if line.startswith("{")]
    mine = [row for row in rows if row["person_id"] == OWNER]
    assert mine and mine[0]["points"] > 0 and mine[0]["rank"] == 1, result.stdout
