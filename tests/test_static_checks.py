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
    """`python -m src.main` stays cheap and independent: it learns the state files' names from src.core.statefiles,
    never from the orchestrator's configuration (pydantic, python-dotenv), requests or the notifiers."""
    probe = "import sys, src.main; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    banned = ("src.orchestration.config", "src.orchestration.machine.bot", "src.notifications", "requests", "dotenv")
    assert "src.core.statefiles" in loaded and "src.main" in loaded  # the probe saw the real imports
    assert sorted(m for m in loaded if m.startswith(banned)) == []


def test_the_shared_leaf_modules_import_only_the_standard_library():
    """src/core/statefiles.py (the bot and the orchestrator) and src/core/redaction.py (the notifier and the
    orchestrator) are imported from both sides: nothing of either side, nothing outside the standard library."""
    imports = imported_packages("src")
    for leaf in ("src/core/statefiles.py", "src/core/redaction.py"):
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


# The rooms of src/, lowest first (docs/ARCHITECTURE.md): a module imports its own room and lower ones, never a
# higher one. A module's room is its longest matching prefix.
ROOMS: tuple[tuple[str, ...], ...] = (
    ("src.core",),  # settings, state files, the calendar, journals: shared by every process
    ("src.tws",),  # the TWS protocol, sans-IO
    ("src.gameplan", "src.notifications"),
    ("src.firewall",),
    ("src.broker",),  # the project's own bot's broker side (its early check is the firewall's rules)
    ("src.orchestration.config", "src.orchestration.exitcodes", "src.orchestration.health"),
    ("src.orchestration.gateway",),
    ("src.orchestration.machine",),
    ("src.orchestration.supervisor",),
    ("src.orchestration.ops",),
    ("src.orchestration.startup", "src.main", "src.simulator"),  # the entry points
)
PACKAGES = ("src", "src.orchestration")  # namespaces only: no code of their own


def room_of(module: str) -> int | None:
    matches = [(len(prefix), rank) for rank, room in enumerate(ROOMS) for prefix in room
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = [f"{m} is in no room (add it to ROOMS)" for m in sorted(graph) if m not in PACKAGES and room_of(m) is None]
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            low, high = room_of(module), room_of(target)
            if low is not None and high is not None and high > low:
                wrong.append(f"{module} (room {low}) imports {target} (room {high}), a higher room")
            if target.startswith("src.simulator") and not module.startswith("src.simulator"):
                wrong.append(f"{module} imports the simulator")
    return wrong


def test_lower_rooms_never_import_higher_ones():
    """The layout shows the architecture: configuration and the protocol at the bottom, the Gateway, then the start-up
    machine, the supervisor, the operator's tools, the entry points on top; product code never imports the
    simulator. The order is the one docs/ARCHITECTURE.md draws."""
    graph = import_graph("src")
    assert {room_of(m) for m in graph} >= set(range(len(ROOMS)))  # every room holds real modules
    assert layering_violations(graph) == []


def test_the_layering_check_finds_an_upward_import_and_a_module_in_no_room():
    graph = {"src.core.settings": {"src.orchestration.ops.status"}, "src.orchestration.ops.status": set(),
             "src.elsewhere": set(), "src.firewall.proxy": {"src.simulator.server"}, "src.simulator.server": set()}
    assert layering_violations(graph) == [
        "src.elsewhere is in no room (add it to ROOMS)",
        "src.core.settings (room 0) imports src.orchestration.ops.status (room 9), a higher room",
        "src.firewall.proxy (room 3) imports src.simulator.server (room 10), a higher room",
        "src.firewall.proxy imports the simulator",
    ]


def test_the_cycle_check_finds_a_cycle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
