"""Plugins every test suite of the repository runs with (services/*/tests and tests/*)."""

# No connection held across network I/O (issue #19): fails a test in which an outbound call or a bus
# publish starts while the same asyncio task holds a checked-out database connection.
pytest_plugins = ["qunzhu_common.testing_io_guard"]
