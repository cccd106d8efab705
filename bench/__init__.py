"""Benchmark: how much the zero-touch orchestrator adds to the Gateway's own start-up.

Side by side, in one invocation on one machine, against the real Docker Engine and the
Gateway simulator container: this project (`python -m src.orchestration.startup`), the
handoff's design (`bench/baselines/handoff.py`) and common practice
(`bench/baselines/common_practice.sh`). See docs/BENCHMARKS.md for the results and
`python -m bench --help` for the command line.

`python -m bench.gameplan` (no Docker) measures how long a 1 MiB gameplan takes to validate,
beside the quadratic check it replaced; its section of docs/BENCHMARKS.md is its own.
"""
