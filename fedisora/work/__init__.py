"""Durable work: state-machine rows advanced by an in-process runner or by arq workers."""

from fedisora.work.engine import AdvanceResult, Engine, LeaseLost, Machine, Retry, WorkContext
from fedisora.work.graph import IllegalTransition, State, StateGraph, exponential

__all__ = [
    "AdvanceResult",
    "Engine",
    "IllegalTransition",
    "LeaseLost",
    "Machine",
    "Retry",
    "State",
    "StateGraph",
    "WorkContext",
    "exponential",
]
