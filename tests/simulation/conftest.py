"""The month simulation's summary lines, shown at the end of the run even without `-s`."""

import pytest

SUMMARY = pytest.StashKey[list]()


@pytest.fixture
def report(request):
    """Call with one line: printed now and repeated in pytest's terminal summary."""

    def report(line: str) -> None:
        print(line)
        request.config.stash.setdefault(SUMMARY, []).append(line)

    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    for line in config.stash.get(SUMMARY, []):
        terminalreporter.write_line(line)
