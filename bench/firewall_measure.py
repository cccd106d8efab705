"""The firewall benchmark's measurements: handshakes, order round trips and market-data bursts, direct and
through the firewall, samples alternating between the two; then the firewall process's memory and idle CPU.

The simulator runs in this process, in a thread; this process's garbage collector is paused during each
measurement (it holds the client and the simulator; the firewall's is its own).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.firewall_figures import CONTENDERS
from bench.firewall_process import BOT_CLIENT_ID, FirewallProcess, cpu_seconds, peak_rss_mb
from bench.relay_floor import measure as measure_relay_floor
from bench.relay_floor import paused_gc
from bench.tws_client import TIMEOUT, RawClient, handshake
from src.simulator import GatewaySimulator
from testkit.plans import put_in_force

DIRECT_CLIENT_ID = 2


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
        try:  # the floor: what a relay that judges nothing adds to the same round trip, on this machine, now
            process["relay_floor"] = measure_relay_floor(options["round_trips"], options["order_warmup"])
        except (OSError, RuntimeError, TimeoutError) as exc:
            errors.append(f"relay floor: {type(exc).__name__}: {exc}")

        process["cpu_s_until_idle"] = cpu_seconds(proc)[0]
        process["rss_mb"] = proc.memory_info().rss / 2**20
        process["rss_peak_mb"] = peak_rss_mb(firewall.pid)
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
