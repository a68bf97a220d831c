"""Declared state graphs for durable work rows (the pattern of Takahe's Stator).

A graph names its states; each non-terminal state has a handler name, a retry schedule and
the states it may move to. Handlers return the next state (or ``None`` for "try again later");
:func:`StateGraph.check_transition` refuses anything undeclared. Pure: no database here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["IllegalTransition", "State", "StateGraph", "check_graph"]


class IllegalTransition(RuntimeError):
    """A handler asked for a transition the graph does not declare."""


@dataclass(frozen=True)
class State:
    name: str
    to: tuple[str, ...] = ()
    terminal: bool = False
    # Delays between attempts, by attempt number; the last one repeats.
    retry: tuple[timedelta, ...] = (timedelta(seconds=10),)
    # After this many failed attempts the row moves to the graph's failed state.
    max_attempts: int | None = None
    # After this long in the state (across attempts) the row moves to the failed state.
    timeout: timedelta | None = None
    # Whether sweeps pick this state up. Externally driven states (e.g. "ready, waiting for the
    # user to publish") are not terminal but have no handler.
    automatic: bool = True

    def delay(self, attempt: int) -> timedelta:
        """Delay before attempt number *attempt* (1-based count of failures so far)."""
        if not self.retry:
            return timedelta(0)
        return self.retry[min(max(attempt, 1), len(self.retry)) - 1]


def exponential(
    first: timedelta, factor: float, cap: timedelta, total: timedelta
) -> tuple[timedelta, ...]:
    """A retry schedule growing by *factor* up to *cap*, long enough to cover *total*."""
    delays: list[timedelta] = []
    spent = timedelta(0)
    delay = first
    while spent < total:
        delays.append(delay)
        spent += delay
        delay = min(cap, delay * factor)
    return tuple(delays)


@dataclass(frozen=True)
class StateGraph:
    name: str
    states: Sequence[State]
    initial: str
    failed: str
    _by_name: dict[str, State] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {s.name: s for s in self.states}
        object.__setattr__(self, "_by_name", by_name)
        if len(by_name) != len(self.states):
            raise ValueError(f"{self.name}: duplicate state names")
        for required in (self.initial, self.failed):
            if required not in by_name:
                raise ValueError(f"{self.name}: unknown state {required!r}")
        for state in self.states:
            for target in state.to:
                if target not in by_name:
                    raise ValueError(f"{self.name}: {state.name} -> unknown {target!r}")
            if state.terminal and state.to:
                raise ValueError(f"{self.name}: terminal state {state.name} has transitions")

    def __getitem__(self, name: str) -> State:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name}: unknown state {name!r}") from None

    @property
    def active_states(self) -> list[str]:
        """States that sweeps look at: not terminal and driven by a handler."""
        return [s.name for s in self.states if not s.terminal and s.automatic]

    @property
    def terminal_states(self) -> list[str]:
        return [s.name for s in self.states if s.terminal]

    def check_transition(self, source: str, target: str) -> None:
        state = self[source]
        if target == self.failed and not state.terminal:
            return  # any live state may fail
        if target not in state.to:
            raise IllegalTransition(f"{self.name}: {source} -> {target} is not declared")

    def reachable(self, source: str) -> Iterable[str]:
        return self[source].to


def check_graph(name: str, retry: Sequence[timedelta]) -> StateGraph:
    """A check of something remote that may not answer yet: ``pending`` is retried on
    *retry*, then ``failed``; it ends ``checked``, or ``skipped`` when there is nothing left to
    check. (Remix stamps and cameo consents are checked so.)"""
    return StateGraph(
        name,
        [
            State(
                "pending",
                to=("checked", "skipped"),
                retry=tuple(retry),
                max_attempts=len(retry) + 1,
            ),
            State("checked", terminal=True),
            State("skipped", terminal=True),
            State("failed", terminal=True),
        ],
        initial="pending",
        failed="failed",
    )
