"""ib_async's own reconnect loop, `ib_async.Watchdog` with its defaults, for its TIMING (scenario 7).

    python -m bench.baselines.watchdog --port P --client-id N --events FILE

This runs the real `ib_async.Watchdog.runAsync` (ib_async 2.x, `ibcontroller.py`), every timing
parameter at its default: appStartupTime 30 s, retryDelay 2 s, connectTimeout 2 s, appTimeout
20 s, probeTimeout 4 s, raiseSyncErrors False. One parameter is not the default: probeContract,
EURUSD by default, which the simulator does not list (its universe is US stocks: a EURUSD probe
gets error 200 and no bars, so Watchdog would call every 20 s of silence a hard timeout and
reconnect); here it is SPY, whose 5-second MIDPOINT bars the simulator serves, as a real Gateway
serves EURUSD's. Its loop, as the library has it:

    while running:
        controller.startAsync(); sleep(appStartupTime); ib.connectAsync(timeout=connectTimeout)
        startedEvent                       <- connected and synced (connectAsync's start-up sync)
        wait for: error 1100 or 100, a disconnect, or appTimeout of silence (then a historical-data
                  probe, probeTimeout; no bars = "hard timeout")
        finally: controller.terminateAsync(); sleep(retryDelay)

A Watchdog needs an IBC controller: it restarts the Gateway itself. Here the Gateway (the
benchmark's in-process simulator) is restarted by the benchmark, which is the outage being
measured, so the controller's `startAsync`/`terminateAsync` do nothing and return at once. What
is modelled is therefore exactly Watchdog's own waiting: retryDelay + appStartupTime + its connect
timeout per attempt. With a real controller each cycle would also stop and start the Gateway
(a new login, tens of seconds), so these figures are a lower bound for a real Watchdog.

Events, one JSON object per line with wall-clock `time.time()`, go to --events: `starting`,
`started` (connected and synced), `stopped` (the loop gave up a session: after an error, a
disconnect, a failed connect), `disconnected`, `error` (with its code), `soft_timeout`,
`hard_timeout`. SIGTERM/SIGINT stop it (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ib_async import IB, Stock, Watchdog


class NoController:
    """Stands in for `ib_async.IBC`: the benchmark, not Watchdog, takes the Gateway down and up."""

    async def startAsync(self) -> None:  # noqa: N802 - ib_async's name
        return None

    async def terminateAsync(self) -> None:  # noqa: N802 - ib_async's name
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.baselines.watchdog", description=__doc__.split("\n\n")[1])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", type=int, default=3)
    p.add_argument("--events", type=Path, required=True)
    p.add_argument("--probe-symbol", default="SPY", help="Watchdog's probeContract, a SMART stock [SPY]")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    logging.getLogger("ib_async").setLevel(logging.WARNING)
    logging.getLogger("ib_async.Watchdog").setLevel(logging.INFO)
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    events = args.events.open("a", encoding="utf-8", buffering=1)

    def event(name: str, **fields: Any) -> None:
        events.write(json.dumps({"event": name, "at": time.time(), **fields}) + "\n")

    ib = IB()
    dog = Watchdog(controller=NoController(), ib=ib, host=args.host, port=args.port,  # type: ignore[arg-type]
                   clientId=args.client_id,  # every other parameter: ib_async's default, but
                   probeContract=Stock(args.probe_symbol, "SMART", "USD"))  # one the simulator knows
    event("defaults", appStartupTime=dog.appStartupTime, retryDelay=dog.retryDelay,
          connectTimeout=dog.connectTimeout, appTimeout=dog.appTimeout, probeTimeout=dog.probeTimeout)
    dog.startingEvent += lambda _: event("starting")
    dog.startedEvent += lambda _: event("started")
    dog.stoppedEvent += lambda _: event("stopped")
    dog.softTimeoutEvent += lambda _: event("soft_timeout")
    dog.hardTimeoutEvent += lambda _: event("hard_timeout")
    ib.disconnectedEvent += lambda: event("disconnected")
    ib.errorEvent += lambda req_id, code, message, contract=None: event("error", code=code) \
        if code in (100, 1100, 1101, 1102) else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = dog.start()
    await stop.wait()
    dog.stop()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
