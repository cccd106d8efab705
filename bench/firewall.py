"""Benchmark: what the order firewall adds between a bot and the Gateway (issue "The order firewall").

    python -m bench.firewall [--quick] [--round-trips N] [--burst N] [--bursts N] [--handshakes N]
                             [--idle S] [--tmp DIR] [--json FILE] [--out FILE]

Two contenders, side by side in one run: **direct** (a client connected to the Gateway simulator)
and **firewall** (the same client through `python -m src.firewall`, a real subprocess, default
settings, in front of the same simulator). The simulator (`src.simulator.GatewaySimulator`) runs in
this process, in a thread; the client is a raw TWS API client on a blocking socket built on
`src/tws/wire.py` (TCP_NODELAY, no event loop), in the main thread, so that its own cost is small and
the same for both. Everything on 127.0.0.1; no Docker. Samples of the two contenders alternate (which
goes first alternates too) after unmeasured warm-ups, so machine noise hits both alike; this
process's garbage collector is paused during each measurement (it holds the client and the
simulator; the firewall's is its own).

1. Order round trip: placeOrder → the first orderStatus for it. The order is one the firewall allows
   (plan in force: today's documented example, SPY/QQQ/BRK.B, max_single_position 10): BUY 1 SPY
   LMT 1.00 for DU123456, which rests (the simulator fills only marketable orders here), then
   cancelOrder → orderStatus Cancelled (timed too, for information) and error 202, before the next.
   Why not BUY then SELL with immediate fills: every SELL would close a position opened today, a day
   trade, and a plan allows at most 3 (hard_limits.pdt_trades_remaining); a resting order cancelled
   never moves the position, and the firewall counts it as working until its Cancelled status.
2. Market-data burst: the simulator's `stream_ticks` builds N numbered tickPrice messages, then
   writes them to the client as fast as the connection takes them (so the sender costs next to
   nothing while they flow); throughput = N / (the read that brought the first → the last one
   read); every message's sequence number is checked (lost, reordered, duplicated).
3. Handshake: TCP connect + `API\\0` opening + version reply + startApi → nextValidId and
   managedAccounts both read; a new connection and client id each time.
4. The firewall process (psutil): its RSS after 1-3 (and its peak, VmHWM), then its CPU time over
   an idle period (the bot's connection open and quiet; the firewall's own session heartbeats):
   CPU-seconds per minute (the scheduler's per-thread nanoseconds, /proc/PID/task/*/schedstat).

Full run (5000 round trips, 5 bursts of 100,000 messages, 200 handshakes per contender, 60 s idle;
about 75 s): results in bench/results/firewall.json and the "Order firewall" section of
docs/BENCHMARKS.md (between its markers; `python -m bench` keeps it when it regenerates the rest).
--quick (200 round trips, 3 bursts of 10,000, 20 handshakes, 3 s idle; about 5 s): prints the
section, writes files only when --json / --out are given. Exit 0 when every measurement ran, 1
otherwise (a goal not met is reported, not an error).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench.gameplan import machine
from bench.report import FIREWALL_END, FIREWALL_START, fmt, median, quantile, replace_section, table
from src.simulator import GatewaySimulator
from src.tws import wire
from testkit.docker import free_port
from testkit.plans import put_in_force

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "firewall.json"
REPORT = REPO_ROOT / "docs" / "BENCHMARKS.md"

GOALS = {
    "order_added_median_ms": 0.2,
    "order_added_p99_ms": 1.0,
    "burst_ratio": 0.9,  # firewall throughput / direct, medians
    "handshake_added_median_ms": 5.0,
    "rss_mb": 40.0,
    "idle_cpu_per_min": 0.05,
}
FULL = {"round_trips": 5000, "order_warmup": 200, "burst": 100_000, "bursts": 5, "handshakes": 200,
        "handshake_warmup": 10, "idle": 60.0}
QUICK = {"round_trips": 200, "order_warmup": 20, "burst": 10_000, "bursts": 3, "handshakes": 20,
         "handshake_warmup": 3, "idle": 3.0}
CONTENDERS = ("direct", "firewall")
ACCOUNT = "DU123456"
BOT_CLIENT_ID, DIRECT_CLIENT_ID, FIREWALL_OWN_CLIENT_ID = 1, 2, 998
CLIENT_VERSIONS = (157, wire.MAX_TEXT_VERSION)  # what ib_async announces
TIMEOUT = 10.0  # seconds for any one answer
QUIET = 2.0  # a burst whose messages stopped coming for this long, once all were sent, is over
READ_SIZE = 1 << 20


# --- a raw TWS API client --------------------------------------------------------------------------------

def _serialized(call: Callable[[Any], None], version: int) -> list[str]:
    """The fields ib_async's Client writes for `call(client)` at server `version` (nothing is sent)."""
    from ib_async.client import Client

    client = Client(object())  # type: ignore[arg-type]
    client._serverVersion = version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    call(client)
    [message] = sent
    return message.split("\0")[:-1]


class RawClient:
    """One API connection on a blocking socket; frames read with `src.tws.wire.FrameBuffer`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = wire.FrameBuffer()
        self.version = 0
        self.next_order_id = 0
        self._place: list[str] = []
        self._cancel: list[str] = []

    def close(self) -> None:
        self.sock.close()

    def next_payload(self, deadline: float) -> bytes:
        while (payload := self.frames.next_payload()) is None:
            self._read(deadline)
        return payload

    def until(self, prefixes: tuple[bytes, ...], deadline: float) -> bytes:
        """The first frame whose payload starts with one of `prefixes` (frames before it dropped)."""
        while True:
            while (payload := self.frames.next_payload()) is not None:
                if payload.startswith(prefixes):
                    return payload
            self._read(deadline)

    def _read(self, deadline: float) -> None:
        if time.perf_counter() > deadline:
            raise TimeoutError("no answer in time")
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("the peer closed the connection")
        self.frames.feed(data)

    # --- orders -----------------------------------------------------------------------------------------

    def prepare_orders(self) -> None:
        """The placeOrder and cancelOrder fields ib_async writes at this session's version."""
        from ib_async import LimitOrder, Stock

        order = LimitOrder("BUY", 1, 1.0, account=ACCOUNT)
        self._place = _serialized(lambda c: c.placeOrder(0, Stock("SPY", "SMART", "USD"), order), self.version)
        self._cancel = _serialized(lambda c: c.cancelOrder(0), self.version)

    def round_trip(self) -> dict[str, Any]:
        """placeOrder → its first orderStatus; then cancelOrder → orderStatus Cancelled, then error 202."""
        order_id = self.next_order_id
        self.next_order_id += 1
        place = self._place.copy()
        place[1] = str(order_id)
        cancel = self._cancel.copy()
        cancel[2] = str(order_id)
        place_frame, cancel_frame = wire.encode(*place), wire.encode(*cancel)
        key = str(order_id).encode()
        status, refused = b"3\0" + key + b"\0", b"4\x002\x00" + key + b"\0"
        start = time.perf_counter()
        self.sock.sendall(place_frame)
        first = self.until((status, refused), start + TIMEOUT)
        placed = time.perf_counter()
        fields = wire.fields_of(first)
        sample: dict[str, Any] = {"order_id": order_id, "seconds": placed - start}
        if first.startswith(refused):
            return {**sample, "error": f"order {order_id} refused: error {fields[3]} {wire.clip(fields[4], 200)}"}
        sample["status"] = fields[2]
        start = time.perf_counter()
        self.sock.sendall(cancel_frame)
        cancelled = wire.fields_of(self.until((status, refused), start + TIMEOUT))
        sample["cancel_seconds"] = time.perf_counter() - start
        if cancelled[0] == "4":
            return {**sample, "error": f"cancel of {order_id}: error {cancelled[3]} {wire.clip(cancelled[4], 200)}"}
        sample["cancel_status"] = cancelled[2]
        self.until((refused,), time.perf_counter() + TIMEOUT)  # 202 "Order Canceled": nothing left in flight
        ok = sample["status"] == "Submitted" and sample["cancel_status"] == "Cancelled"
        return sample if ok else {**sample, "error": f"order {order_id}: statuses {sample['status']}, "
                                                     f"{sample['cancel_status']}"}

    # --- a market-data burst ----------------------------------------------------------------------------

    def read_burst(self, req_id: int, count: int, sent: Future[int], called: float) -> dict[str, Any]:
        """Read the burst's ticks (`sent`: the simulator's future, returned at `called`) and check their
        sequence numbers; timed from the read that brought the first tick to the last tick read."""
        prefix = f"1\0{6}\0{req_id}\0".encode()
        seen = bytearray(count + 2)
        received = reordered = duplicates = highest = 0
        first_at: float | None = None
        last_at = called
        deadline = called + 30.0 + count / 10_000
        self.sock.settimeout(0.25)
        try:
            while received < count:
                try:
                    data = self.sock.recv(READ_SIZE)
                except TimeoutError:
                    now = time.perf_counter()
                    if now > deadline or (sent.done() and now - last_at > QUIET):
                        break
                    continue
                read_at = time.perf_counter()
                if not data:
                    raise ConnectionError("the peer closed the connection during the burst")
                if first_at is None and received == 0:
                    first_at = read_at  # corrected below if this read held none of the burst
                self.frames.feed(data)
                _, payloads = self.frames.take()
                for payload in payloads:
                    if not payload.startswith(prefix):
                        continue
                    seq = int(payload.split(b"\0", 6)[5])
                    if not 0 < seq <= count or seen[seq]:
                        duplicates += 1
                        continue
                    seen[seq] = 1
                    received += 1
                    if seq < highest:
                        reordered += 1
                    else:
                        highest = seq
                if received == 0:
                    first_at = None
                last_at = time.perf_counter()
        finally:
            self.sock.settimeout(TIMEOUT)
        seconds = last_at - first_at if first_at is not None else None
        sample = {"messages": count, "received": received, "lost": count - received, "reordered": reordered,
                  "duplicates": duplicates, "seconds": seconds,
                  "per_second": received / seconds if seconds else None,
                  "first_after_s": first_at - called if first_at is not None else None}
        try:
            sample["sent"] = sent.result(QUIET)  # handed to the socket: done once the last drain returned
        except Exception as exc:  # noqa: BLE001 (the simulator's failure is this sample's error)
            sample["error"] = f"the simulator's burst: {type(exc).__name__}: {exc}"
        return sample


def handshake(port: int, client_id: int) -> tuple[float, RawClient]:
    """Connect, open, startApi; the seconds until nextValidId and managedAccounts were both read."""
    start = time.perf_counter()
    deadline = start + TIMEOUT
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    client = RawClient(sock)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(wire.opening(*CLIENT_VERSIONS))
        hello = wire.fields_of(client.next_payload(deadline))
        sock.sendall(wire.start_api(client_id))
        seen: set[int | None] = set()
        while not {wire.NEXT_VALID_ID, wire.MANAGED_ACCTS} <= seen:
            payload = client.next_payload(deadline)
            kind = wire.message_id(payload)
            seen.add(kind)
            if kind == wire.NEXT_VALID_ID:
                client.next_order_id = int(wire.fields_of(payload)[2])
        seconds = time.perf_counter() - start
        client.version = int(hello[0])
    except BaseException:
        client.close()
        raise
    return seconds, client


# --- the firewall, a real subprocess -----------------------------------------------------------------------

class FirewallProcess:
    """`python -m src.firewall` in front of 127.0.0.1:`gateway_port`, its output in `log_path`."""

    def __init__(self, gateway_port: int, state_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.state_dir, self.log_path = state_dir, log_path
        self.command = [sys.executable, "-m", "src.firewall", "--listen", f"127.0.0.1:{self.port}",
                        "--gateway", f"127.0.0.1:{gateway_port}", "--state-dir", str(state_dir),
                        "--bot-client-id", str(BOT_CLIENT_ID), "--client-id", str(FIREWALL_OWN_CLIENT_ID),
                        "--expected-accounts", "", "--log-level", "INFO"]
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self, timeout: float = 30.0) -> float:
        """Start it and wait until its own session is synced (orders are judged); the seconds it took."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRADING_MODE": "paper"}  # as in its image
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = self.started + timeout
        while "Firewall session synced" not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"the firewall exited with {self.process.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the firewall was not synced within {timeout:g} s: {self.tail()}")
            time.sleep(0.02)  # its log file is the only signal it gives
        return time.monotonic() - self.started

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 8) -> str:
        return " | ".join(self.output().splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, as Docker stops it; its exit code (killed after `timeout`)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def counts(self) -> dict[str, int] | None:
        """Its own closing line: orders allowed and refused, connections."""
        match = re.search(r"Firewall stopped: (\d+) orders allowed, (\d+) refused, (\d+) connections", self.output())
        if not match:
            return None
        return dict(zip(("allowed", "refused", "connections"), map(int, match.groups()), strict=True))


def cpu_seconds(proc: psutil.Process) -> tuple[float, str]:
    """CPU time of the process so far and the clock read: the scheduler's nanoseconds summed over its
    threads (/proc/PID/task/*/schedstat) when readable, else psutil's user + system (10 ms ticks)."""
    try:
        total = sum(int((task / "schedstat").read_text().split()[0])
                    for task in Path(f"/proc/{proc.pid}/task").iterdir())
        return total / 1e9, "schedstat"
    except (OSError, ValueError, IndexError):
        times = proc.cpu_times()
        return times.user + times.system, "psutil"


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (the state dir's journal and sessions file)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount, where = parts[1] if len(parts) > 2 else "", str(path.resolve())
            inside = where == mount or where.startswith(mount.rstrip("/") + "/")
            if mount and inside and len(mount) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


# --- measuring ------------------------------------------------------------------------------------------------

@contextmanager
def paused_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alternating(count: int) -> Iterator[tuple[int, str]]:
    """(i, contender) for `count` rounds, each round both contenders, the first of each round alternating."""
    for i in range(count):
        for contender in (CONTENDERS if i % 2 == 0 else CONTENDERS[::-1]):
            yield i, contender


def measure_handshakes(ports: dict[str, int], count: int, warmup: int) -> list[dict[str, Any]]:
    samples = []
    next_id = {"direct": 1000, "firewall": 5000}
    with paused_gc():
        for i, contender in alternating(warmup + count):
            client_id = next_id[contender]
            next_id[contender] += 1
            try:
                seconds, client = handshake(ports[contender], client_id)
                client.close()
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                samples.append({"measure": "handshake", "contender": contender, "client_id": client_id,
                                "error": f"handshake: {type(exc).__name__}: {exc}"})
                break  # the rest would fail alike
            if i >= warmup:
                samples.append({"measure": "handshake", "contender": contender, "client_id": client_id,
                                "seconds": seconds})
    return samples


def measure_orders(clients: dict[str, RawClient], count: int, warmup: int) -> list[dict[str, Any]]:
    samples = []
    for client in clients.values():
        client.prepare_orders()
    with paused_gc():
        for i, contender in alternating(warmup + count):
            try:
                sample = clients[contender].round_trip()
            except (OSError, TimeoutError) as exc:
                sample = {"error": f"order round trip: {type(exc).__name__}: {exc}"}
            if i >= warmup or sample.get("error"):
                samples.append({"measure": "order", "contender": contender, "warmup": i < warmup, **sample})
            if sample.get("error"):
                break  # this connection's state is unknown now
    return samples


def measure_bursts(sim: GatewaySimulator, clients: dict[str, RawClient], client_ids: dict[str, int], size: int,
                   count: int) -> list[dict[str, Any]]:
    samples = []
    req_id = 9000
    with paused_gc():
        for i, contender in alternating(count + 1):  # round 0: a warm-up of 1,000 messages each
            n = size if i else min(1000, size)
            req_id += 1
            try:
                sent = sim.stream_ticks(client_ids[contender], n, req_id=req_id)  # returns once the ticks are built
                sample = clients[contender].read_burst(req_id, n, sent, time.perf_counter())
            except (OSError, TimeoutError, LookupError, RuntimeError) as exc:
                sample = {"error": f"burst: {type(exc).__name__}: {exc}"}
            if i or sample.get("error"):
                samples.append({"measure": "burst", "contender": contender, "req_id": req_id, "warmup": i == 0,
                                **sample})
            if sample.get("error"):
                break
    return samples


def run(options: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Every measurement; errors are recorded (in samples, or in `errors`), never raised."""
    state_dir = workdir / "state"
    put_in_force(state_dir)
    samples: list[dict[str, Any]] = []
    errors: list[str] = []
    process: dict[str, Any] = {}
    sim = GatewaySimulator(port=0, fills="marketable")
    firewall: FirewallProcess | None = None
    clients: dict[str, RawClient] = {}
    try:
        sim.start()
        firewall = FirewallProcess(sim.port, state_dir, workdir / "firewall.log")
        process["start_to_synced_s"] = firewall.start()
        proc = psutil.Process(firewall.pid)
        process["rss_mb_at_start"] = proc.memory_info().rss / 2**20
        ports = {"direct": sim.port, "firewall": firewall.port}
        samples += measure_handshakes(ports, options["handshakes"], options["handshake_warmup"])

        client_ids = {"direct": DIRECT_CLIENT_ID, "firewall": BOT_CLIENT_ID}
        for contender in CONTENDERS:
            clients[contender] = handshake(ports[contender], client_ids[contender])[1]
            clients[contender].sock.settimeout(TIMEOUT)
        versions = {c: clients[c].version for c in CONTENDERS}
        process["server_versions"] = versions
        samples += measure_orders(clients, options["round_trips"], options["order_warmup"])
        samples += measure_bursts(sim, clients, client_ids, options["burst"], options["bursts"])

        process["cpu_s_until_idle"] = cpu_seconds(proc)[0]
        process["rss_mb"] = proc.memory_info().rss / 2**20
        process["rss_peak_mb"] = _peak_rss_mb(firewall.pid)
        clients.pop("direct").close()  # the bot's connection through the firewall stays open, quiet
        begin, ticks, wall = cpu_seconds(proc), proc.cpu_times(), time.monotonic()
        time.sleep(options["idle"])  # the idle period is the measurement: nothing to wait for
        end, ticks_end, wall = cpu_seconds(proc), proc.cpu_times(), time.monotonic() - wall
        idle_cpu = end[0] - begin[0]
        process.update(idle_s=wall, idle_cpu_s=idle_cpu, cpu_per_min=idle_cpu / wall * 60, cpu_clock=end[1],
                       idle_cpu_ticks_s=(ticks_end.user + ticks_end.system) - (ticks.user + ticks.system),
                       rss_mb_after_idle=proc.memory_info().rss / 2**20, threads=proc.num_threads())
    except Exception as exc:  # recorded: the run reports what it measured, and exits 1
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        for client in clients.values():
            client.close()
        if firewall is not None:
            process.update(exit_code=firewall.stop(), counts=firewall.counts(), log_tail=firewall.tail(3))
        reached: dict[str, int] = {}
        for order in sim.orders:
            reached[str(order["client_id"])] = reached.get(str(order["client_id"]), 0) + 1
        process["orders_reached_simulator"] = reached
        sim.stop()
    return {"samples": samples, "process": process, "errors": errors}


# --- the figures ------------------------------------------------------------------------------------------------

def p99(values: list[float]) -> float | None:
    return quantile(values, 0.99)


def _seconds(samples: list[dict[str, Any]], measure: str, contender: str, key: str = "seconds") -> list[float]:
    return [s[key] for s in samples if s["measure"] == measure and s["contender"] == contender
            and not s.get("error") and not s.get("warmup") and isinstance(s.get(key), (int, float))]


def _latency(samples: list[dict[str, Any]], measure: str, key: str = "seconds") -> dict[str, Any]:
    """Median, p95, p99 per contender (ms), what the firewall adds to each, and the ratio of medians."""
    cell: dict[str, Any] = {}
    for contender in CONTENDERS:
        ms = [x * 1000 for x in _seconds(samples, measure, contender, key)]
        cell[contender] = {"n": len(ms), "median_ms": median(ms), "p95_ms": quantile(ms, 0.95), "p99_ms": p99(ms),
                           "max_ms": max(ms) if ms else None}
    d, f = cell["direct"], cell["firewall"]
    for q in ("median", "p95", "p99"):
        a, b = d[f"{q}_ms"], f[f"{q}_ms"]
        cell[f"added_{q}_ms"] = b - a if a is not None and b is not None else None
    cell["ratio"] = f["median_ms"] / d["median_ms"] if d["median_ms"] and f["median_ms"] is not None else None
    return cell


def summary(results: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    samples, process = results["samples"], results["process"]
    order, cancel, hand = _latency(samples, "order"), _latency(samples, "order", "cancel_seconds"), \
        _latency(samples, "handshake")
    bursts: dict[str, Any] = {}
    for contender in CONTENDERS:
        v = [s for s in samples if s["measure"] == "burst" and s["contender"] == contender and not s.get("warmup")
             and not s.get("error")]
        rates = [s["per_second"] for s in v if s.get("per_second")]
        bursts[contender] = {"n": len(v), "messages": options["burst"], "median_per_s": median(rates),
                             "min_per_s": min(rates) if rates else None,
                             "median_s": median([s["seconds"] for s in v]),
                             "median_first_s": median([s["first_after_s"] for s in v]),
                             "lost": sum(s["lost"] for s in v), "reordered": sum(s["reordered"] for s in v),
                             "duplicates": sum(s["duplicates"] for s in v)}
    d, f = bursts["direct"]["median_per_s"], bursts["firewall"]["median_per_s"]
    bursts["ratio"] = f / d if d and f is not None else None
    intact = all(bursts[c]["n"] == options["bursts"] and bursts[c]["lost"] == bursts[c]["reordered"]
                 == bursts[c]["duplicates"] == 0 for c in CONTENDERS)

    def le(x: float | None, goal: float) -> bool:
        return x is not None and x <= goal

    met = {
        "order_added_median": le(order["added_median_ms"], GOALS["order_added_median_ms"]),
        "order_added_p99": le(order["added_p99_ms"], GOALS["order_added_p99_ms"]),
        "burst_ratio": bursts["ratio"] is not None and bursts["ratio"] >= GOALS["burst_ratio"],
        "burst_intact": intact,
        "handshake_added_median": le(hand["added_median_ms"], GOALS["handshake_added_median_ms"]),
        "rss": le(process.get("rss_mb"), GOALS["rss_mb"]),
        "idle_cpu": le(process.get("cpu_per_min"), GOALS["idle_cpu_per_min"]),
    }
    expected = {"order": options["round_trips"], "handshake": options["handshakes"], "burst": options["bursts"]}
    counts_right = all(len(_seconds(samples, m, c)) == n for m, n in expected.items() for c in CONTENDERS)
    errors = [s["error"] for s in samples if s.get("error")] + results["errors"]
    all_ran = not errors and counts_right and "cpu_per_min" in process
    return {"order": order, "cancel": cancel, "handshake": hand, "burst": bursts, "met": met,
            "all_met": all(met.values()), "all_ran": all_ran, "errors": errors}


def stored(results: dict[str, Any]) -> dict[str, Any]:
    """The results as saved: latencies as whole microseconds, one list per measure and contender (a
    full run has 10,000 round trips); a burst, or a sample that failed, as it is."""
    samples = results["samples"]
    kept: dict[str, Any] = {"handshake": {}, "order": {}, "burst": {}}
    for contender in CONTENDERS:
        mine = [s for s in samples if s["contender"] == contender and not s.get("error")]
        hands = [s for s in mine if s["measure"] == "handshake"]
        orders = [s for s in mine if s["measure"] == "order"]
        statuses: dict[str, int] = {}
        for s in orders:
            key = f"{s['status']}, {s['cancel_status']}"
            statuses[key] = statuses.get(key, 0) + 1
        kept["handshake"][contender] = {"us": [round(s["seconds"] * 1e6) for s in hands],
                                        "client_ids": [s["client_id"] for s in hands[:1] + hands[-1:]]}
        kept["order"][contender] = {"us": [round(s["seconds"] * 1e6) for s in orders],
                                    "cancel_us": [round(s["cancel_seconds"] * 1e6) for s in orders],
                                    "statuses": statuses,
                                    "order_ids": [s["order_id"] for s in orders[:1] + orders[-1:]]}
        kept["burst"][contender] = [s for s in mine if s["measure"] == "burst"]
    kept["failed"] = [s for s in samples if s.get("error")]
    return {**results, "samples": kept}


def dumps(data: dict[str, Any]) -> str:
    """Indented JSON, each list of numbers on one line."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


# --- the report section ----------------------------------------------------------------------------------------

def _ms(x: float | None, digits: int = 3) -> str:
    return fmt(x, " ms", digits)


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _rate(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}/s"


def render(results: dict[str, Any], json_path: str) -> str:
    meta, summ, process = results["meta"], results["summary"], results["process"]
    o = opts = meta["options"]
    order, cancel, hand, burst, met = summ["order"], summ["cancel"], summ["handshake"], summ["burst"], summ["met"]
    g = GOALS
    goals = [
        [f"Order round trip (placeOrder → first orderStatus): added median ≤ {g['order_added_median_ms']:g} ms",
         f"{_ms(order['added_median_ms'])} ({_ms(order['direct']['median_ms'])} → "
         f"{_ms(order['firewall']['median_ms'])})", _verdict(met["order_added_median"])],
        [f"… added p99 ≤ {g['order_added_p99_ms']:g} ms",
         f"{_ms(order['added_p99_ms'])} ({_ms(order['direct']['p99_ms'])} → {_ms(order['firewall']['p99_ms'])})",
         _verdict(met["order_added_p99"])],
        [f"Market-data burst of {o['burst']:,} messages: throughput through the firewall ≥ "
         f"{g['burst_ratio']:g} × direct",
         f"{fmt(burst['ratio'], ' ×', 2)} ({_rate(burst['firewall']['median_per_s'])} vs "
         f"{_rate(burst['direct']['median_per_s'])}, medians of {o['bursts']})", _verdict(met["burst_ratio"])],
        ["… none lost or reordered (sequence number in every message)",
         f"lost {burst['direct']['lost'] + burst['firewall']['lost']}, reordered "
         f"{burst['direct']['reordered'] + burst['firewall']['reordered']}, duplicated "
         f"{burst['direct']['duplicates'] + burst['firewall']['duplicates']} of "
         f"{2 * o['bursts'] * o['burst']:,}", _verdict(met["burst_intact"])],
        [f"Handshake (connect → nextValidId + managedAccounts): added median ≤ "
         f"{g['handshake_added_median_ms']:g} ms",
         f"{_ms(hand['added_median_ms'], 2)} ({_ms(hand['direct']['median_ms'], 2)} → "
         f"{_ms(hand['firewall']['median_ms'], 2)})", _verdict(met["handshake_added_median"])],
        [f"The firewall's RSS ≤ {g['rss_mb']:g} MB (after the measurements above)",
         f"{fmt(process.get('rss_mb'), ' MB', 1)} (peak {fmt(process.get('rss_peak_mb'), ' MB', 1)})",
         _verdict(met["rss"])],
        [f"Idle CPU ≤ {g['idle_cpu_per_min']:g} CPU-seconds per minute",
         f"{fmt(process.get('cpu_per_min'), ' CPU-s/min', 4)} over {fmt(process.get('idle_s'), ' s', 1)}",
         _verdict(met["idle_cpu"])],
    ]

    def lat_row(label: str, cell: dict[str, Any], digits: int = 3) -> list[str]:
        d, f = cell["direct"], cell["firewall"]
        return [label, f"{d['n']} / {f['n']}", _ms(d["median_ms"], digits), _ms(d["p95_ms"], digits),
                _ms(d["p99_ms"], digits), _ms(f["median_ms"], digits), _ms(f["p95_ms"], digits),
                _ms(f["p99_ms"], digits), f"+{_ms(cell['added_median_ms'], digits)}",
                f"+{_ms(cell['added_p99_ms'], digits)}", fmt(cell["ratio"], " ×", 2)]

    latency = table(["measure", "n (direct / firewall)", "direct median", "p95", "p99", "firewall median", "p95",
                     "p99", "added, median", "added, p99", "ratio of medians"],
                    [lat_row("order round trip: placeOrder → first orderStatus (Submitted)", order),
                     lat_row("cancelOrder → orderStatus Cancelled (information)", cancel),
                     lat_row("handshake: connect → nextValidId + managedAccounts", hand, 2)])
    bd, bf = burst["direct"], burst["firewall"]
    bursts = table(["contender", "bursts", "messages each", "throughput, median", "slowest burst", "duration, median",
                    "first tick read after, median", "lost", "reordered", "duplicated"],
                   [[name, str(b["n"]), f"{b['messages']:,}", _rate(b["median_per_s"]), _rate(b["min_per_s"]),
                     _ms(b["median_s"] * 1000 if b["median_s"] is not None else None, 1),
                     _ms(b["median_first_s"] * 1000 if b["median_first_s"] is not None else None, 2),
                     str(b["lost"]), str(b["reordered"]), str(b["duplicates"])]
                    for name, b in (("direct", bd), ("firewall", bf))])
    counts = process.get("counts") or {}
    reached = process.get("orders_reached_simulator") or {}
    machine_row = (f"`{meta['command']}` on {meta['started']}, git {meta['git']}; {meta['cpu']}, "
                   f"{meta['nproc']} cores, Python {meta['python']}, pydantic {meta['pydantic']}; state dir on "
                   f"{meta.get('state_fs', '?')}; load average {meta['loadavg']} at the start, "
                   f"{meta.get('loadavg_end', '?')} at the end; {fmt(meta.get('duration_s'), ' s', 0)}")
    errors = summ.get("errors") or []
    lines = [
        FIREWALL_START,
        "## Order firewall",
        "",
        f"_Generated by `python -m bench.firewall` (bench/firewall.py) from `{json_path}`; no Docker. "
        "`python -m bench` keeps this section as it is when it regenerates the rest of the report._",
        "",
        "The question (issue \"The order firewall\"): **what does putting the firewall between the bot and the "
        "Gateway cost?** Two contenders in one run: **direct**, a client connected to the Gateway simulator, "
        "and **firewall**, the same client through `python -m src.firewall` (a real subprocess, default "
        "settings, INFO log to a file, its plan in force today's documented example) in front of the same "
        "simulator. The simulator runs in the bench's process; the client is a raw TWS API client on a blocking "
        "socket built on `src/tws/wire.py` (TCP_NODELAY), so its own cost is small and the same for both; "
        "everything on 127.0.0.1. Samples alternate between the contenders (which goes first alternates too), "
        "after unmeasured warm-ups "
        f"({opts['order_warmup']} orders and {opts['handshake_warmup']} handshakes each, a 1,000-message burst "
        "each), so machine noise hits both alike.",
        "",
        "Each order is one the firewall allows: BUY 1 SPY LMT 1.00 for DU123456, which rests (the simulator "
        "fills marketable orders only), then is cancelled before the next. BUY then SELL with immediate fills "
        "would not do: each SELL closes a position opened today, a day trade, and a plan allows at most 3 "
        "(`hard_limits.pdt_trades_remaining`). The burst is the simulator's `stream_ticks`: numbered tickPrice "
        "messages, all built before the first is sent, then written as fast as the connection takes them; "
        "throughput = messages / (the read that brought the first → the last one read), every sequence number "
        "checked. Added = the firewall's quantile − the direct one's.",
        "",
        "What the firewall does on each path, besides relaying (asyncio protocols: a frame is judged and "
        "forwarded in the callback that read it): an order is decoded, judged (the plan's sha256 file stat-ed "
        "once, the New York date cached until midnight), journalled (`firewall_decisions.jsonl`, one line "
        "encoded by orjson, one `os.write`) before it is forwarded (its log line is DEBUG: the "
        "journal has it); of the Gateway's frames only orderStatus, errors and nextValidId are read (copied), "
        "the rest relayed as they came; a handshake's nextValidId is passed on once the sessions file "
        "(`firewall_sessions.json`) has been rewritten atomically, without fsync (it describes live "
        "connections), and it is rewritten again when a session closes. The state dir was on "
        f"{meta.get('state_fs', '?')} (`--tmp` puts it elsewhere).",
        "",
        table(["goal (\"The order firewall\")", "measured", "verdict"], goals),
        "",
        latency,
        "",
        bursts,
        "",
        "The firewall process (psutil; `python -m src.firewall`, started → its own session synced in "
        f"{fmt(process.get('start_to_synced_s'), ' s', 2)}): RSS {fmt(process.get('rss_mb_at_start'), ' MB', 1)} "
        f"once synced, {fmt(process.get('rss_mb'), ' MB', 1)} after the measurements, peak (VmHWM) "
        f"{fmt(process.get('rss_peak_mb'), ' MB', 1)}, {fmt(process.get('rss_mb_after_idle'), ' MB', 1)} after "
        f"the idle period; CPU {fmt(process.get('cpu_s_until_idle'), ' s', 2)} until then. Idle period: "
        f"{fmt(process.get('idle_s'), ' s', 1)} with the bot's connection open and quiet (the firewall's own "
        f"session heartbeats, its plan poll runs), {fmt(process.get('idle_cpu_s'), ' CPU-s', 4)} ("
        + ("the scheduler's nanoseconds, /proc/PID/task/*/schedstat; psutil's 10 ms ticks said "
           f"{fmt(process.get('idle_cpu_ticks_s'), ' s', 2)}" if process.get("cpu_clock") == "schedstat"
           else "psutil, 10 ms ticks") + f"; {process.get('threads', '?')} threads). It stopped on "
        f"SIGTERM with exit code {process.get('exit_code')}, counting {counts.get('allowed', '?')} orders "
        f"allowed, {counts.get('refused', '?')} refused, {counts.get('connections', '?')} connections; orders "
        f"that reached the simulator, by client id: "
        + (", ".join(f"{k}: {v}" for k, v in sorted(reached.items())) or "none") + ".",
        "",
        f"Machine and command: {machine_row}.",
    ]
    if errors:
        lines += ["", f"Failed measurements: {len(errors)}", "", *[f"* {e}" for e in errors[:20]]]
    lines.append(FIREWALL_END)
    return "\n".join(lines)


def update_report(text: str, section: str) -> str:
    """`text` with its firewall section replaced, or inserted before the reading (or at the end)."""
    return replace_section(text, section, FIREWALL_START, FIREWALL_END)


# --- command line ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.firewall", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts, 3 s idle; about 5 s")
    p.add_argument("--round-trips", type=int, help="order round trips per contender [5000; --quick 200]")
    p.add_argument("--burst", type=int, help="messages per market-data burst [100000; --quick 10000]")
    p.add_argument("--bursts", type=int, help="bursts per contender [5; --quick 3]")
    p.add_argument("--handshakes", type=int, help="handshakes per contender [200; --quick 20]")
    p.add_argument("--idle", type=float, help="seconds of the idle CPU period [60; --quick 3]")
    p.add_argument("--tmp", type=Path, help="where the firewall's state dir (its journal, its sessions file) is "
                                            "made [the system's temporary directory]; its filesystem is reported")
    p.add_argument("--json", type=Path, help="results [bench/results/firewall.json; --quick: none]")
    p.add_argument("--out", type=Path, help="the report whose firewall section is (re)written "
                                            "[docs/BENCHMARKS.md; --quick: none, the section is printed]")
    args = p.parse_args(argv)
    options: dict[str, Any] = dict(QUICK if args.quick else FULL)
    for name in ("round_trips", "burst", "bursts", "handshakes", "idle"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if min(options["round_trips"], options["burst"], options["bursts"], options["handshakes"]) < 1 \
            or options["idle"] <= 0:
        p.error("every count must be at least 1 and --idle positive")
    json_path = args.json or (None if args.quick else RESULTS)
    out_path = args.out or (None if args.quick else REPORT)
    command = "python -m bench.firewall " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = machine(command.strip())
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-firewall-", dir=args.tmp) as work:
        meta["state_fs"] = _filesystem(Path(work))
        results = run(options, Path(work))
    meta.update(options=options, duration_s=time.monotonic() - began,
                loadavg_end=" ".join(f"{x:.2f}" for x in os.getloadavg()))
    results = {"meta": meta, **results}
    results["summary"] = summary(results, options)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(dumps(stored(results)) + "\n", encoding="utf-8")
    shown = os.path.relpath(json_path, (out_path or REPORT).parent) if json_path else "this run (not saved)"
    section = render(results, shown)
    if out_path:
        old = out_path.read_text(encoding="utf-8") if out_path.exists() else ""
        out_path.write_text(update_report(old, section), encoding="utf-8")
    else:
        print(section)
    summ = results["summary"]
    print(f"bench.firewall: order round trip +{_ms(summ['order']['added_median_ms'])} median, "
          f"+{_ms(summ['order']['added_p99_ms'])} p99; burst {fmt(summ['burst']['ratio'], ' ×', 2)}; handshake "
          f"+{_ms(summ['handshake']['added_median_ms'], 2)}; RSS {fmt(results['process'].get('rss_mb'), ' MB', 1)}; "
          f"idle {fmt(results['process'].get('cpu_per_min'), ' CPU-s/min', 4)}; goals "
          f"{'all met' if summ['all_met'] else 'NOT all met: ' + ', '.join(k for k, v in summ['met'].items() if not v)}"
          + ("" if summ["all_ran"] else f"; {len(summ['errors'])} measurements FAILED or missing"), file=sys.stderr)
    return 0 if summ["all_ran"] else 1


if __name__ == "__main__":
    sys.exit(main())
