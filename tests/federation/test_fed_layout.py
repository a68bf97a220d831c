"""The federation layer's modules import one another without a circle, lazily or not, and
know nothing of the web: who answers a browser is decided in :mod:`fedisora.negotiation`.

Every import counts, the ones inside functions too (a deferred import that only dodges a
circle at load time is the circle still: the modules cannot be understood or tested apart).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
FEDERATION = ROOT / "fedisora" / "federation"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, known: set[str]) -> set[str]:
    """The modules of *known* that the module at *path* imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` names a module; ``from module import name`` not
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def _graph(paths: list[Path]) -> dict[str, set[str]]:
    known = {_module_name(path) for path in paths}
    return {
        _module_name(path): _imports(path, known) - {_module_name(path)} - {"fedisora.federation"}
        for path in paths
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of *graph*, as the list of modules round it, or None."""
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_federation_modules_import_each_other_without_a_circle() -> None:
    graph = _graph(sorted(FEDERATION.glob("*.py")))
    assert len(graph) >= 25
    # the circles this layout had: delivery <-> ingest <-> quote_check (quote stamps, the
    # quote check's machine), cameo_clips <-> ingest (Ignored, the cameo check's machine)
    assert "fedisora.federation.ingest" in graph["fedisora.federation.quote_verify"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_federation_knows_nothing_of_the_web() -> None:
    for path in sorted(FEDERATION.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "web", f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] != "web", f"{path.name} imports {alias.name}"


def test_web_pages_do_not_import_the_federation_routes() -> None:
    """The web negotiates through fedisora.negotiation, not the route module."""
    for path in sorted((ROOT / "web").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module != "fedisora.federation.routes", path.name
