"""Static checks, run by CI through pytest: ruff (with bandit's security rules) on src, tests, bench and testkit,
mypy (strict) on src. Their configuration lives in pyproject.toml; this also checks it is there,
so that a missing section cannot make the checks pass by checking nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_selects_the_security_rules_and_finds_nothing():
    lint = CONFIG.get("tool", {}).get("ruff", {}).get("lint", {})
    assert {"E", "F", "W", "B", "S"} <= set(lint.get("select", [])), "pyproject.toml: [tool.ruff.lint] select"
    assert not {"S602", "S604", "S605", "S301", "S506", "S"} & set(lint.get("ignore", []))  # shell=True, unsafe loads
    result = run("ruff", "check", "--no-cache", "src", "tests", "bench", "testkit")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_strict_on_src_and_finds_nothing():
    mypy = CONFIG.get("tool", {}).get("mypy", {})
    assert mypy.get("strict") is True, "pyproject.toml: [tool.mypy] strict = true"
    result = run("mypy", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def imported_packages(folder: str) -> dict[str, set[str]]:
    """Each .py file under `folder` and the top-level packages it imports."""
    import ast

    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        found[str(path.relative_to(ROOT))] = {name.split(".")[0] for name in names}
    return found


def test_the_product_imports_no_test_helper_and_the_bench_imports_no_test():
    """src/ ships alone (tests/, testkit/ and bench/ are not installed in production); the bench runs
    without the test suite: what both need is in testkit/."""
    rules = {"src": {"tests", "testkit", "bench"}, "bench": {"tests"}, "testkit": {"tests", "bench"}}
    wrong = [f"{path} imports {sorted(imports & banned)}" for folder, banned in rules.items()
             for path, imports in imported_packages(folder).items() if imports & banned]
    assert len(imported_packages("src")) > 20 and imported_packages("testkit")  # the check reads real files
    assert wrong == []


def test_the_bot_imports_neither_the_orchestrators_configuration_nor_the_notifier():
    """`python -m src.main` stays cheap and independent: it learns the state files' names from src.statefiles,
    never from the orchestrator's configuration (pydantic, python-dotenv), requests or the notifiers."""
    probe = "import sys, src.main; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    banned = ("src.orchestration.config", "src.orchestration.bot", "src.notifications", "requests", "dotenv")
    assert "src.statefiles" in loaded and "src.main" in loaded  # the probe saw the real imports
    assert sorted(m for m in loaded if m.startswith(banned)) == []


def test_the_shared_leaf_modules_import_only_the_standard_library():
    """src/statefiles.py (the bot and the orchestrator) and src/redaction.py (the notifier and the orchestrator)
    are imported from both sides: nothing of either side, nothing outside the standard library."""
    imports = imported_packages("src")
    for leaf in ("src/statefiles.py", "src/redaction.py"):
        assert imports[leaf] - {"__future__"} <= sys.stdlib_module_names, leaf


def import_graph(folder: str = "src") -> dict[str, set[str]]:
    """Module -> the project modules it imports, at any depth of the code (a function's lazy import too),
    except under `if TYPE_CHECKING:` (a type named for the checker runs nothing). `from pkg import module`
    is an edge to the module, not to the package."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / folder).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                    and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                    for stmt in node.body for n in ast.walk(stmt)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in checking:
                continue
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                targets = {f"{source}.{a.name}" for a in node.names}
                graph[name] |= targets & modules.keys()
                if source in modules and not targets <= modules.keys():
                    graph[name].add(source)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_module_of_the_product_imports_itself_back():
    """No import cycle in src/, lazy imports included: a module low in the stack (the machine, the settings) never
    reaches back up (the supervisor, the schedule). Where the lower one needs the higher one's work, it is handed
    in (the machine's `supervisor`, the CLI's `orchestrator_for`)."""
    graph = import_graph("src")
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the check reads the real imports
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
