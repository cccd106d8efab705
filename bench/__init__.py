"""Benchmark: how much the zero-touch orchestrator adds to the Gateway's own start-up.

Side by side, in one invocation on one machine, against the real Docker Engine and the
Gateway simulator container: this project (`python -m src.orchestration.startup`), the
handoff's design (`bench/baselines/handoff.py`) and common practice
(`bench/baselines/common_practice.sh`). See docs/BENCHMARKS.md for the results and
`python -m bench --help` for the command line.

Scenario 7 (`bench/reconnect.py`, no Docker) measures the bot's reconnect after an outage of the
Gateway's API, beside ib_async's Watchdog defaults (`bench/baselines/watchdog.py`), against the
simulator in the bench's own process.

`python -m bench.gameplan` (no Docker) measures how long a 1 MiB gameplan takes to validate,
beside the quadratic check it replaced; its section of docs/BENCHMARKS.md is its own.

`python -m bench.firewall` (no Docker) measures what the order firewall adds between a bot and the
Gateway (an order's round trip, a market-data burst, the handshake, its memory and idle CPU), beside
a direct connection; its section of docs/BENCHMARKS.md is its own. `python -m bench.relay_floor` prints the
floor under its order round trip: what a null relay (forwarding bytes, judging nothing) adds on this machine.

Layout, one module per concern: the command line (cli.py) and the world it runs in (env.py,
contenders.py); the scenarios (scenario_base.py and scenarios.py for 1-6, reconnect*.py for 7,
supervised.py, supervisor*.py for 8); the report (report.py puts together one module per section
under sections/, from stats.py, markdown.py, figures.py, reruns.py and markers.py); and the
benchmarks with a section of their own (gameplan.py, recovery.py, firewall*.py with tws_client.py).
"""
