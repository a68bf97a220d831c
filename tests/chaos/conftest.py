"""The chaos suite: faults injected into a real deployment under load (see test_chaos.py).

Every test here is marked ``chaos`` (``-m "not chaos"`` leaves them out, ``-m chaos`` runs
only them), but test_scale_out.py's, which injects no fault: it uses the same rig with two
web processes to show scale-out (marked ``slow`` only). ``FEDISORA_TEST_CHAOS_SCALE``
(default 1) multiplies the faults each test injects and the load between them
(``scripts/chaos`` runs it larger);
``FEDISORA_TEST_CHAOS_SEED`` picks the seed (default ``fedisora``). The tally of faults
injected and survived is printed in the terminal summary, above pytest's own last line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rig import ChaosRig, Template, chaos_rig, chaos_template
from scenario import Tally

_TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return _TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TALLY.injected:
        terminalreporter.write_sep("-", "chaos")
        for note in _TALLY.notes:
            terminalreporter.write_line(note)
        terminalreporter.write_line(_TALLY.line())


@pytest.fixture(scope="session")
def template() -> Iterator[Template]:
    with chaos_template() as made:
        yield made


@pytest.fixture
def rig(tmp_path: Path, template: Template) -> Iterator[ChaosRig]:
    with chaos_rig(tmp_path, template) as built:
        yield built


@pytest.fixture
def warped_rig(tmp_path: Path, template: Template) -> Iterator[ChaosRig]:
    with chaos_rig(tmp_path, template, warped=True) as built:
        yield built
