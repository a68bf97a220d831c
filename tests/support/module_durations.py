"""The suite's slow modules first: under pytest-xdist's loadscope, a module runs whole in one
process, and xdist's default order (most tests first) left the slowest modules, which have
few tests, for the end, where one of them alone could add minutes to the run.

``tests/module_durations.json`` holds each slow module's seconds (setup + call + teardown) from
a run; :func:`order` sorts the collected items by it (a module not listed counts as fast,
and keeps its place). Stale numbers only cost some of the gain. To refresh them::

    scripts/test --durations=0 | tee /tmp/run.log
    .venv/bin/python tests/support/module_durations.py < /tmp/run.log > tests/module_durations.json
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FILE = Path(__file__).resolve().parent.parent / "module_durations.json"
FLOOR = 15.0  # seconds: modules faster than this are not listed

_LINE = re.compile(r"\s*([\d.]+)s (?:call|setup|teardown)\s+([^:\s]+)::")


def load() -> dict[str, float]:
    try:
        data = json.loads(FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()}


def order(items: list[Any]) -> None:
    """Sort *items* (pytest's collected items, in place) slowest module first; the items of a
    module keep their order."""
    seconds = load()
    if not seconds:
        return
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::", 1)[0], 0.0))


def main() -> None:
    totals: Counter[str] = Counter()
    for line in sys.stdin:
        found = _LINE.match(line)
        if found:
            totals[found.group(2)] += float(found.group(1))
    slow = {m: round(s) for m, s in totals.most_common() if s >= FLOOR}
    json.dump(slow, sys.stdout, indent=0, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
