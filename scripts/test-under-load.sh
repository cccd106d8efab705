#!/usr/bin/env bash
# The whole test suite on a loaded machine: one CPU hog per core, then the README's test
# command (`bash scripts/test.sh`, which provisions and runs everything, Docker tests included)
# RUNS times in a row. This is the proof that no test leans on an idle machine's timing.
#
#   bash scripts/test-under-load.sh [RUNS] [pytest args...]    # RUNS defaults to 3
#   bash scripts/test-under-load.sh                            # the proof: 3 whole-suite runs
#   bash scripts/test-under-load.sh 1 -x -q tests/orchestration
#
# The hogs are busy loops started from this shell, so they run at the tests' own niceness and
# really compete for the cores. It stops at the first failing run, prints one line per run
# (PASS/FAIL, seconds, pytest's summary line) and exits with the first failing run's status (0
# when every run passed). However it ends, the hogs are killed; on SIGINT/SIGTERM the run in
# progress gets SIGINT first (pytest then tears its fixtures down: no bot or container left).
# Each run's output is also in logs/test-under-load/run-N.log.
# Environment: LOAD_HOGS (how many hogs, default `nproc`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage="usage: bash scripts/test-under-load.sh [RUNS] [pytest args...]"
runs=3
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    runs=$1
    shift
fi
if [ "$runs" -lt 1 ]; then
    echo "test-under-load: RUNS must be 1 or more ($usage)" >&2
    exit 1
fi
hogs=${LOAD_HOGS:-$(nproc)}
if ! [[ $hogs =~ ^[0-9]+$ ]] || [ "$hogs" -lt 1 ]; then
    echo "test-under-load: LOAD_HOGS must be a whole number of 1 or more, not '$hogs'" >&2
    exit 1
fi

hog_pids=()
run_pid=""
tail_pid=""
stop_hogs() {
    for pid in "${hog_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${hog_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    hog_pids=()
}
stop_run() {  # the run in progress (its own session): SIGINT, then SIGKILL if it is not gone in 60 s
    if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
        echo "test-under-load: stopping the run in progress" >&2
        kill -INT -- "-$run_pid" 2>/dev/null || true
        (sleep 60; kill -KILL -- "-$run_pid" 2>/dev/null) &
        local killer=$!
        wait "$run_pid" 2>/dev/null || true
        kill "$killer" 2>/dev/null || true
    fi
    if [ -n "$tail_pid" ]; then
        kill "$tail_pid" 2>/dev/null || true
    fi
}
trap 'stop_run; stop_hogs' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

for _ in $(seq "$hogs"); do
    sh -c 'while :; do :; done' &
    hog_pids+=("$!")
done
echo "test-under-load: $hogs CPU hog(s) on $(nproc) core(s) at niceness $(nice) (PIDs ${hog_pids[*]});" \
     "$runs run(s) of: bash scripts/test.sh${*:+$(printf ' %q' "$@")}"

logs=logs/test-under-load
mkdir -p "$logs"
results=()
status=0
for run in $(seq "$runs"); do
    log="$logs/run-$run.log"
    : > "$log"
    started=$(date +%s)
    # In a session of its own, so that a signal to this script reaches the whole run (pytest and
    # the processes it started), and waited for with `wait`, so that the signal is acted on at once.
    # A background job of a script starts with SIGINT ignored, and Python keeps it so: `env` gives
    # it back its default, so that pytest turns it into KeyboardInterrupt and tears down.
    setsid env --default-signal=INT bash scripts/test.sh "$@" > "$log" 2>&1 < /dev/null &
    run_pid=$!
    tail -n +1 -f --pid="$run_pid" "$log" &
    tail_pid=$!
    code=0
    wait "$run_pid" || code=$?
    run_pid=""
    wait "$tail_pid" || true
    tail_pid=""
    seconds=$(( $(date +%s) - started ))
    # pytest's last line: "=== 1 failed, 1100 passed in 812.34s (0:13:32) ===" (unframed under -q)
    summary=$({ grep -E ' in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$log" || true; } \
              | grep -E 'passed|failed|error|skipped|deselected|no tests ran' | tail -n 1 \
              | sed -E 's/^=+ //; s/ =+$//' || true)
    alive=0
    for pid in "${hog_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then alive=$((alive + 1)); fi
    done
    if [ "$code" -eq 0 ]; then verdict=PASS; else verdict="FAIL (exit $code)"; fi
    results+=("run $run/$runs: $verdict in ${seconds} s, $alive/$hogs hogs running: ${summary:-no pytest summary line (see $log)}")
    echo "test-under-load: ${results[-1]}"
    if [ "$code" -ne 0 ]; then
        status=$code
        break
    fi
    if [ "$alive" -ne "$hogs" ]; then
        echo "test-under-load: a CPU hog died during run $run: that run was not under full load" >&2
        status=1
        break
    fi
done

stop_hogs
echo "test-under-load: summary ($hogs hogs on $(nproc) cores)"
printf '  %s\n' "${results[@]}"
if [ "$status" -ne 0 ]; then
    echo "test-under-load: FAILED (each run's output is in $logs/)" >&2
else
    echo "test-under-load: all $runs run(s) passed under load"
fi
exit "$status"
