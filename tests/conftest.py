"""The suite's root: fixtures come from the plugins in tests/fixtures/ and tests/standins/.

Under CI=true nothing may skip: a skipped test is reported as a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.app",
    "tests.fixtures.engine",
    "tests.fixtures.logs",
    "tests.fixtures.slack",
    "tests.fixtures.survey",
    "tests.fixtures.browser",
    "tests.fixtures.seeding",
    "tests.fixtures.anonymous",
    "tests.fixtures.own_postgres",
    "tests.standins.fixtures",
]

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run everything: {report.longrepr}"
