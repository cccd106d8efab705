"""The firewall against foreign bots: ib_async, ib_insync 0.9.86 and the official ibapi 9.81.1, each a process.

The client libraries cannot share the venv's import path (ib_insync's `eventkit` collides with
ib_async's `aeventkit`): scripts/setup.sh installs ib_insync and ibapi into directories beside the
venv (.venv/ib_insync, .venv/ibapi), and the bot under tests/firewall/clients/ runs with that
directory first on its path. Each bot places the same catalogue (clients/catalogue.py) and prints
what it was told per order; the test counts what reached the simulator, reads the firewall's
journal, and checks that every refused order's client got error 201 "Order rejected -
reason:FIREWALL: ...". A missing library fails.

Two worlds: `process` (the simulator and the firewall in this process: fast, every library and
client id) and `compose` (real Docker, the production Compose layout with the simulator: the bot
connects to 127.0.0.1:GATEWAY_PORT, the firewall container; what reached the simulator is its own
log of every order it received).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from src.gameplan.loader import trading_date
from src.simulator.market import UNIVERSE
from src.core.statefiles import FIREWALL_DECISIONS_FILE
from testkit.docker import docker
from testkit.firewall import running_firewall
from testkit.gateway import SimGateway
from testkit.plans import put_in_force, strategy_c_plan
from tests.firewall.clients import catalogue
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import new_project, require_docker

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).resolve().parent / "clients"
BOT, STRANGER = 1, 7
BOT_TIMEOUT = 90.0  # seconds for a whole catalogue (it takes one or two)
ALLOWED_THROUGH = [("BUY", 5.0, "SPY"), ("BUY", 10.0, "QQQ")]


@dataclass(frozen=True)
class Library:
    name: str
    directory: Path  # scripts/setup.sh installs it there
    script: str
    version: str  # what the bot reports as the library's __version__ (a prefix)
    server_version: int  # the highest it announces; the simulator (178) and the firewall accept it
    cannot_send: frozenset[str] = frozenset()  # catalogue entries the library refuses to encode


def _ib_async_site() -> Path:
    spec = importlib.util.find_spec("ib_async")
    assert spec is not None and spec.origin is not None, "ib_async is a dependency of the project"
    return Path(spec.origin).parents[1]


LIBRARIES = {
    "ib_async": Library("ib_async", _ib_async_site(), "insync_bot.py", "2.", 178),
    "ib_insync": Library("ib_insync", ROOT / ".venv" / "ib_insync", "insync_bot.py", "0.9.86", 176),
    # ibapi 9.81 raises its own error 579 for a non-ASCII symbol and sends nothing
    "ibapi": Library("ibapi", ROOT / ".venv" / "ibapi", "ibapi_bot.py", "9.81.1", 157, frozenset({"long-s-spy"})),
}


each_library = pytest.mark.parametrize("name", sorted(LIBRARIES))
each_world = pytest.mark.parametrize("world", ["process", pytest.param("compose", marks=pytest.mark.docker)])
ORDER_LOG = re.compile(r"API: ORDER received: client (\d+) order \d+ (\w+) (\S+) (\S+)")
SYNCED = "Firewall session synced"


def installed(name: str) -> Library:
    """The library, or the test fails (never skips): the suite must not pass without it."""
    lib = LIBRARIES[name]
    if not (lib.directory / lib.name / "__init__.py").is_file():
        pytest.fail(f"{lib.name} is not installed in {lib.directory}: run bash scripts/setup.sh", pytrace=False)
    return lib


@dataclass
class Run:
    """One bot's catalogue through one firewall: what the bot printed, the journal, what reached the simulator."""

    library: Library
    connected: dict[str, Any]
    reports: dict[str, dict[str, Any]]
    decisions: list[dict[str, Any]]
    reached: list[tuple[str, float, str]]
    client_ids: set[int]


Reached = Callable[[], list[tuple[str, float, str, int]]]  # (action, quantity, symbol, client id) per order


def run_bot(lib: Library, state: Path, client_id: int, world: str = "process") -> Run:
    if world == "compose":
        require_docker()
        gateway = SimGateway(project=new_project(), state_dir=state, sim={"login_delay": 0})
        try:
            gateway.up(60)
            wait(lambda: SYNCED in docker("logs", gateway.firewall, check=False).stdout, 20)
            return _drive(lib, gateway.port, client_id, state, lambda: [
                (action, float(quantity), symbol, int(client)) for client, action, quantity, symbol
                in ORDER_LOG.findall(gateway.logs())])
        finally:
            gateway.down()
    with running_simulator() as sim, running_firewall(sim.port, state) as fw:
        return _drive(lib, fw.port, client_id, state, lambda: [
            (o["action"], o["quantity"], o["symbol"], o["client_id"]) for o in list(sim.orders)])


def _drive(lib: Library, port: int, client_id: int, state: Path, reached: Reached) -> Run:
    """Run the bot's catalogue against `port`; what it printed, the journal and what reached the simulator."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib.directory), str(CLIENTS)])}
    try:
        done = subprocess.run([sys.executable, str(CLIENTS / lib.script), str(port), str(client_id), lib.name],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=BOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{lib.name} bot did not finish in {BOT_TIMEOUT:g} s: {_tail(exc.stdout)} {_tail(exc.stderr)}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines and lines[-1] == {"step": "done"}, \
        f"{lib.name} bot failed (exit {done.returncode}): {_tail(done.stdout)}\n{_tail(done.stderr)}"
    wait(lambda: len(decisions(state)) >= len(lines) - 2 - len(lib.cannot_send))
    allowed = sum(d["decision"] == "allowed" for d in decisions(state))
    wait(lambda: len(reached()) >= allowed)
    time.sleep(0.1)  # anything else on its way would arrive now (the behaviour is that nothing more does)
    orders = reached()
    return Run(lib, lines[0], {line["name"]: line for line in lines[1:-1]}, decisions(state),
               [(action, quantity, symbol) for action, quantity, symbol, _ in orders], {o[3] for o in orders})


def decisions(state: Path) -> list[dict[str, Any]]:
    path = state / FIREWALL_DECISIONS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _tail(text: str | bytes | None, size: int = 3000) -> str:
    return (text.decode(errors="replace") if isinstance(text, bytes) else text or "")[-size:]


def check(run: Run, reason: Callable[[dict[str, Any]], str], reached: list[tuple[str, float, str]]) -> None:
    """What reached the simulator, one journal line per order sent with its decision, and 201 for each refusal."""
    lib = run.library
    assert run.connected["step"] == "connected" and run.connected["version"].startswith(lib.version)
    assert Path(run.connected["module"]).is_relative_to(lib.directory), run.connected["module"]
    assert run.connected["server_version"] == lib.server_version
    assert run.connected["accounts"] == ["DU123456", "DU234567"]
    unreadable = [d for d in run.decisions if d["reason"].startswith("placeOrder cannot be read")]
    assert not unreadable, _undecodable(run, unreadable)
    sent = [entry for entry in catalogue.ORDERS if entry["name"] not in lib.cannot_send]
    assert sorted(run.reports) == sorted(entry["name"] for entry in catalogue.ORDERS)
    for name in lib.cannot_send:
        assert "skipped" in run.reports[name], run.reports[name]

    assert run.reached == reached
    journal = [(str(d["order_id"]), d["decision"]) for d in run.decisions]
    expected = [(str(run.reports[e["name"]]["order_id"]), "allowed" if reason(e) == "" else "refused") for e in sent]
    assert journal == expected
    for entry, decision in zip(sent, run.decisions, strict=True):
        assert reason(entry) in decision["reason"], (entry["name"], decision["reason"])
        assert decision["plan_sha256"], decision
        report = run.reports[entry["name"]]
        refusals = [message for code, message in report["errors"] if code == catalogue.REJECTED]
        if decision["decision"] == "allowed":
            assert refusals == [], (entry["name"], report)
        else:
            assert refusals and all(m.startswith(catalogue.REFUSAL_PREFIX) for m in refusals), (entry["name"], report)


def _undecodable(run: Run, unreadable: list[dict[str, Any]]) -> str:
    """The finding: which placeOrder the firewall could not read, as the library wrote it."""
    by_id = {str(r.get("order_id")): r for r in run.reports.values()}
    lines = [f"{run.library.name} at server version {run.connected['server_version']}: the firewall could not read"]
    for decision in unreadable:
        report = by_id.get(str(decision["order_id"]), {})
        lines.append(f"  {report.get('name')} (order {decision['order_id']}): {decision['reason']}")
        lines.append(f"    fields sent ({len(report.get('fields') or [])}): {report.get('fields')}")
    return "\n".join(lines)


def test_the_catalogue_uses_the_simulators_contract_ids() -> None:
    assert (catalogue.SPY_CON_ID, catalogue.TSLA_CON_ID) == (UNIVERSE["SPY"].con_id, UNIVERSE["TSLA"].con_id)


@each_world
@each_library
def test_only_the_plans_orders_reach_the_gateway(tmp_path: Path, name: str, world: str) -> None:
    library = installed(name)
    put_in_force(tmp_path)
    run = run_bot(library, tmp_path, BOT, world)
    check(run, lambda entry: entry["reason"] or "", ALLOWED_THROUGH)
    assert run.client_ids == {BOT}
    assert {d["client_id"] for d in run.decisions} == {BOT}
    assert {d["account"] for d in run.decisions if d["decision"] == "allowed"} == {catalogue.ACCOUNT}


@each_library
def test_a_client_that_is_not_the_bot_gets_nothing_through(tmp_path: Path, name: str) -> None:
    library = installed(name)
    put_in_force(tmp_path)
    run = run_bot(library, tmp_path, STRANGER)
    check(run, lambda entry: entry["reason"] if "exercise" in entry else f"client id {STRANGER} has no order authority",
          [])


@each_world
@each_library
def test_strategy_c_gets_nothing_through(tmp_path: Path, name: str, world: str) -> None:
    library = installed(name)
    put_in_force(tmp_path, strategy_c_plan(trading_date()))
    run = run_bot(library, tmp_path, BOT, world)
    check(run, lambda entry: entry["reason"] if "exercise" in entry
          else "no trading authority under the plan in force (strategy C)", [])
