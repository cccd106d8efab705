"""The floor under the firewall's order round trip: what any Python asyncio relay adds on this machine.

    python -m bench.relay_floor [--round-trips 5000] [--warmup 200]

A null relay (asyncio protocols forwarding bytes both ways, judging nothing: the firewall's relay without
its decoder, rules, book or journal), run as its own process like `python -m src.firewall`, in front of the
same simulator as a direct client; order round trips (placeOrder → first orderStatus, then a cancel) alternate
between the two, as in `python -m bench.firewall`. What the firewall adds above this floor is its own work.
Prints one line; writes nothing. `python -m bench.firewall` measures it too, in the same run as the firewall
(`measure`), and reports it beside the firewall's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.tws_client import TIMEOUT, handshake
from src.simulator import GatewaySimulator
from testkit.docker import free_port

CLIENT_IDS = {"direct": 5, "relay": 6}


@contextmanager
def paused_gc() -> Iterator[None]:
    """This process's collector paused for a measurement (it holds the client and the simulator)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Side(asyncio.Protocol):
    """One end of a relayed connection: what it reads goes to the other end as it came."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: _Side | None = None
        self.held: list[bytes] = []  # read before the other end was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.write(data)
        else:
            self.held.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.close()


async def serve(listen: int, target: int) -> None:
    """The null relay on 127.0.0.1:`listen` in front of 127.0.0.1:`target`, until killed."""
    loop = asyncio.get_running_loop()

    def accepted() -> _Side:
        client = _Side()

        async def connect() -> None:
            _, upstream = await loop.create_connection(_Side, "127.0.0.1", target)
            client.other, upstream.other = upstream, client
            for data in client.held:
                upstream.transport.write(data)  # type: ignore[union-attr]

        loop.create_task(connect())
        return client

    await loop.create_server(accepted, "127.0.0.1", listen)
    print("ready", flush=True)
    await asyncio.Event().wait()


def measure(round_trips: int, warmup: int) -> dict[str, Any]:
    """Medians (ms) of the direct and the relayed round trips, and what the relay adds."""
    sim = GatewaySimulator(port=0, fills="marketable")
    sim.start()
    port = free_port()
    relay = subprocess.Popen([sys.executable, "-m", "bench.relay_floor", "--serve", str(port), str(sim.port)],
                             stdout=subprocess.PIPE, text=True)
    try:
        if relay.stdout is None or relay.stdout.readline().strip() != "ready":
            raise RuntimeError("the null relay did not start")
        clients = {name: handshake(p, CLIENT_IDS[name])[1] for name, p in (("direct", sim.port), ("relay", port))}
        seconds: dict[str, list[float]] = {name: [] for name in clients}
        for client in clients.values():
            client.sock.settimeout(TIMEOUT)
            client.prepare_orders()
        with paused_gc():
            for i in range(warmup + round_trips):
                for name in ("direct", "relay") if i % 2 == 0 else ("relay", "direct"):
                    sample = clients[name].round_trip()
                    if "error" in sample:
                        raise RuntimeError(sample["error"])
                    if i >= warmup:
                        seconds[name].append(sample["seconds"])
        for client in clients.values():
            client.close()
    finally:
        relay.kill()
        relay.wait(timeout=10)
        sim.stop()
    medians = {name: statistics.median(v) * 1e3 for name, v in seconds.items()}
    return {**medians, "added": medians["relay"] - medians["direct"], "n": round_trips}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.relay_floor", description=__doc__.split("\n\n")[2])
    p.add_argument("--round-trips", type=int, default=5000, help="measured round trips per contender [5000]")
    p.add_argument("--warmup", type=int, default=200, help="unmeasured round trips per contender first [200]")
    p.add_argument("--serve", nargs=2, type=int, metavar=("LISTEN", "TARGET"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        asyncio.run(serve(*args.serve))
        return 0
    m = measure(args.round_trips, args.warmup)
    print(f"bench.relay_floor: order round trip, medians of {m['n']}: direct {m['direct']:.3f} ms, through a null "
          f"relay {m['relay']:.3f} ms: the relay adds +{m['added']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
