"""Five orchestrators started at the same instant: exactly one proceeds, the others touch nothing."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from src.orchestration.machine.bot import running_bot
from src.core.journal import read_runs
from src.core.statefiles import READY_FILE, RUNS_FILE
from testkit.stack import processes_mentioning
from tests.helpers.fake_docker import container_state, healthy_daemon, rule

RACERS = 5


def test_five_orchestrators_at_once_exactly_one_proceeds(world, fake_docker):
    # the winner's first docker call is slow, so it still holds the lock when the others arrive
    fake_docker.rules([rule("container inspect", stdout=container_state(), sleep=1.5), *healthy_daemon()])
    started = time.monotonic()
    procs = [world.launch() for _ in range(RACERS)]
    # wait on all five at once, so each run's elapsed time is its own exit, not the winner's plus its own
    with ThreadPoolExecutor(RACERS) as pool:
        runs = list(pool.map(lambda proc: world.finish(proc, started), procs))

    codes = sorted(run.code for run in runs)
    # on a failure, say why each run ended (the journal), not only the ends of five stderrs
    why = [(r["pid"], r["outcome"], r["reason"], [t["to"] for t in r["transitions"]])
           for r in read_runs(world.state_dir)]
    assert codes == [0] + [1] * (RACERS - 1), why
    (winner,) = [proc.pid for proc, run in zip(procs, runs, strict=True) if run.code == 0]
    records = list(read_runs(world.state_dir))
    lines = (world.state_dir / RUNS_FILE).read_text().splitlines()
    assert len(records) == len(lines) == RACERS  # one whole JSON line per run, none torn or interleaved
    refused = [r for r in records if r["outcome"] == "refused"]
    assert len(refused) == RACERS - 1
    assert all(r["reason"] == f"another orchestrator is already running (PID {winner})" for r in refused)
    assert all(r["transitions"] == [] and r["exit_code"] == 1 for r in refused)
    losers = [run for run in runs if run.code == 1]
    (winner_run,) = [run for run in runs if run.code == 0]
    # refused at once: every loser exits while the winner is still running (order, not a wall-clock bound)
    assert max(run.elapsed for run in losers) < winner_run.elapsed
    assert not any("alerts still pending" in run.stderr for run in losers)  # they had nothing to send

    assert {call.ppid for call in fake_docker.calls} == {winner}  # only the winner touched Docker
    bot = running_bot(world.state_dir)
    assert bot == json.loads((world.state_dir / READY_FILE).read_text())["pid"]
    assert len(processes_mentioning(f"src.main --gateway-host 127.0.0.1 --gateway-port {world.port}")) == 1  # one bot
    assert len(world.hook.received) == 1  # the refused runs alerted nobody
    assert "Trading system up" in world.hook.received[0].json["embeds"][0]["description"]
