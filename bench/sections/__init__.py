"""The sections of the report (docs/BENCHMARKS.md), one module each; bench/report.py puts them together.

    intro        the question, the contenders, the machine and command
    goals        the Goals table (and its note on the reruns' figures)
    reruns       Reruns since the full run: each partial rerun's own figures
    detection    1. Detection latency
    overhead     2. End-to-end overhead
    timeout      3. Timeout accuracy
    repeat       4. Repeat run
    cost         5. Cost while waiting
    cli_startup  6. CLI start-up
    reconnect    7. Reconnect after an outage
    supervisor   8. The supervisor
    firewall     Order firewall (written by `python -m bench.firewall`, carried by `python -m bench`)

Each module's `section(...)` returns the section's lines (joined with newlines by the report).
"""
