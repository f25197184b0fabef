"""What every suite under tests/ shares: a failing test shows the last lines of each running service's log
(the processes' logs live in temporary directories that are gone once the run ends)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

LOG_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed or report.when == "teardown":
        return
    from tests.integration.stack import Stack

    for stack in Stack.running:
        for name, service in stack.services.items():
            report.sections.append((f"{name} log (last {LOG_LINES} lines)", service.log_tail(LOG_LINES)))
