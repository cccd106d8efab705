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
a direct connection; its section of docs/BENCHMARKS.md is its own.
"""
