"""The firewall process: ``python -m src.firewall`` (the firewall container's command).

    python -m src.firewall [--listen HOST:PORT] [--gateway HOST:PORT] [--state-dir DIR]
                           [--bot-client-id N] [--client-id N] [--expected-accounts A,B]

Every option also reads a variable (FIREWALL_LISTEN, FIREWALL_GATEWAY, STATE_DIR, BOT_CLIENT_ID,
FIREWALL_CLIENT_ID, EXPECTED_ACCOUNTS); FIREWALL_GATEWAY defaults to the Gateway's own API port
for TRADING_MODE on this network namespace's loopback (127.0.0.1:4002 paper, 4001 live). A bad
value is one line on stderr and exit 1. It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from src.core import cli
from src.core.schedule import TradingDateClock
from src.core.settings import API_PORTS, FIREWALL_PORT, api_port
from src.core.statefiles import FIREWALL_DECISIONS_FILE, FIREWALL_SESSIONS_FILE, PLAN_FILE, PLAN_SHA256_FILE
from src.firewall.book import Book
from src.firewall.decisions import DecisionLog, read_recent
from src.firewall.dirwatch import DirWatch, open_watch
from src.firewall.plan import InForce, PlanWatcher
from src.firewall.proxy import Firewall
from src.firewall.rules import Leg
from src.firewall.sessions import Sessions
from src.firewall.upstream import Upstream

log = logging.getLogger("src.firewall")
LISTEN_DEFAULT = f"0.0.0.0:{FIREWALL_PORT}"  # noqa: S104 (inside the Gateway's network namespace; Compose publishes it on 127.0.0.1)
PLAN_POLL = 0.9  # seconds: a plan changed without its sha256 is refused within a second (two stat calls a poll);
# a hand-over (plan, then its sha256) is seen by the very next order anyway (a change notice, or a stat call per
# order where notices do not come). Not shorter: each poll is a wake-up of an idle firewall, and idle CPU has a
# budget (issue 18: <= 0.05 CPU-s a minute)
MAX_CLIENT_ID = 2**31 - 1


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 1 to 65535, not {text[:60]!r}")
    return host, int(port)


def _client_id(text: str) -> int:
    if not (text.isdigit() and int(text) <= MAX_CLIENT_ID):
        raise argparse.ArgumentTypeError(f"expected a client id from 0 to {MAX_CLIENT_ID}, not {text[:30]!r}")
    return int(text)


def _accounts(text: str) -> frozenset[str]:
    return frozenset(a.strip() for a in text.split(",") if a.strip())


def parse_args(argv: list[str] | None, env: dict[str, str]) -> argparse.Namespace:
    mode = env.get("TRADING_MODE", "paper") or "paper"
    gateway = env.get("FIREWALL_GATEWAY") or f"127.0.0.1:{api_port(mode)}"
    parser = cli.ArgumentParser(prog="python -m src.firewall", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, default=env.get("FIREWALL_LISTEN") or LISTEN_DEFAULT)
    parser.add_argument("--gateway", type=_address, default=gateway)
    parser.add_argument("--state-dir", type=Path, default=Path(env.get("STATE_DIR") or "state"))
    parser.add_argument("--bot-client-id", type=_client_id, default=env.get("BOT_CLIENT_ID") or "1")
    parser.add_argument("--client-id", type=_client_id, default=env.get("FIREWALL_CLIENT_ID") or "998")
    parser.add_argument("--expected-accounts", type=_accounts, default=env.get("EXPECTED_ACCOUNTS", ""))
    parser.add_argument("--log-level", default=env.get("FIREWALL_LOG_LEVEL") or "INFO",
                        choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    if mode.strip().lower() not in API_PORTS and not env.get("FIREWALL_GATEWAY"):
        parser.error(f"TRADING_MODE must be paper or live, not {mode[:20]!r}")
    if args.client_id == args.bot_client_id:
        parser.error("FIREWALL_CLIENT_ID must differ from BOT_CLIENT_ID")
    return args


def replay_day(book: Book, records: Iterable[dict[str, object]], today: date) -> int:
    """Today's allowed orders from the journal count towards today's day trades again."""
    count = 0
    for record in records:
        if record.get("decision") != "allowed" or record.get("day") != today.isoformat():
            continue
        legs = record.get("legs")
        if not isinstance(legs, list) or not isinstance(record.get("account"), str):
            continue
        parsed = tuple(Leg(str(s), side == "BUY", float(q)) for s, side, q in
                       (leg for leg in legs if isinstance(leg, list) and len(leg) == 3
                        and isinstance(leg[2], (int, float))))
        book.count_day(today, str(record["account"]), parsed)
        count += 1
    return count


async def run(args: argparse.Namespace, stop: asyncio.Event, ready: Callable[[Firewall], None] | None = None) -> None:
    """Serve until `stop` is set; `ready` is called with the firewall once it listens."""
    book = Book()
    trading_date = TradingDateClock()
    plan = PlanWatcher(args.state_dir / PLAN_FILE, trading_date)
    plan.poll()
    replayed = replay_day(book, read_recent(args.state_dir / FIREWALL_DECISIONS_FILE), trading_date())

    def symbols() -> Iterable[str]:
        authority = plan.current.authority
        return sorted(authority.symbols) if authority is not None else ()

    host, port = args.gateway
    upstream = Upstream(host, port, args.client_id, book, symbols)

    def in_force(sha256_only: bool = True) -> InForce:
        """The plan in force now. With change notices (`watch`), as last read: every change of either file is
        read as its notice arrives, before any order that came after it; without them its validated sha256's
        file is looked at again (one stat call) whenever an order is judged. So an order placed the moment its
        plan is handed over is judged under it, not the one before. Both files every PLAN_POLL s."""
        if plan.poll(sha256_only=sha256_only):
            log.warning("Firewall: plan in force changed: %s", plan.current.reason)
            upstream.resolve()
        return plan.current

    loop = asyncio.get_running_loop()
    watch: DirWatch | None = open_watch(args.state_dir, frozenset({PLAN_FILE, PLAN_SHA256_FILE}))

    def drop_watch() -> None:
        nonlocal watch
        if watch is not None:
            loop.remove_reader(watch.fileno())
            watch.close()
            watch = None
        plan.notices = False

    def distrust(why: str) -> None:
        """Notices no longer tell every change: each order looks at the sha256 file again (a stat call)."""
        drop_watch()
        log.warning("Firewall: %s: the plan in force is looked at for every order instead", why)

    plan_alone = False  # a notice for the plan file without its sha256: the loop's look reads it, as without notices

    def notice() -> None:
        """Read the change notices. A new sha256 is read at once (a hand-over replaces the plan, then its
        sha256); the plan file changed alone is left to the loop's look, which refuses it if its bytes no
        longer hash to the validated sha256: the same as without notices."""
        nonlocal plan_alone
        if watch is None:
            return
        names = watch.read()
        if names is None:
            distrust("the change notices on the state directory ended")
            in_force(sha256_only=False)
        elif PLAN_SHA256_FILE in names:
            in_force(sha256_only=False)
        elif names:
            plan_alone = True

    def look() -> None:
        """The loop's full look at both files; a change found here, with no notice of it, ends the notices."""
        nonlocal plan_alone
        notice()  # a notice already queued is taken first
        reads, expected = plan.reads, plan_alone
        plan_alone = False
        in_force(sha256_only=False)
        if plan.notices and plan.reads != reads and not expected:
            distrust("a change to the plan in force came without a change notice")

    if watch is not None:
        loop.add_reader(watch.fileno(), notice)
        plan.notices = True

    firewall = Firewall(
        gateway=args.gateway, book=book, upstream=upstream,
        plan=in_force, bot_client_id=args.bot_client_id,
        journal=DecisionLog(args.state_dir / FIREWALL_DECISIONS_FILE),
        today=trading_date, expected_accounts=args.expected_accounts,
        sessions=Sessions(args.state_dir / FIREWALL_SESSIONS_FILE),
    )
    server = await asyncio.get_running_loop().create_server(firewall.client_protocol, *args.listen)
    log.info("Firewall listening on %s:%d for the Gateway at %s:%d; bot client id %d; %s; %d of today's orders "
             "replayed from the journal", *args.listen, *args.gateway, args.bot_client_id, plan.current.reason,
             replayed)
    # what start-up built (the modules, the plan loader's schemas) is never traced by the collector again:
    # a full collection over it, at some order's moment, would stall that order for milliseconds
    gc.freeze()
    session = asyncio.ensure_future(upstream.run(stop))
    if ready is not None:
        ready(firewall)
    try:
        while not stop.is_set():
            look()  # a new plan's symbols are resolved before an order needs them
            await asyncio.sleep(PLAN_POLL)  # cheaper than a wait_for on `stop`; a stop waits <= PLAN_POLL
    finally:
        drop_watch()
        server.close()
        session.cancel()
        await asyncio.gather(session, return_exceptions=True)
        firewall.journal.close()
        log.info("Firewall stopped: %d orders allowed, %d refused, %d connections", firewall.counts["allowed"],
                 firewall.counts["refused"], firewall.counts["connections"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, dict(os.environ))
    logging.basicConfig(level=args.log_level, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args, stop)

    try:
        asyncio.run(amain())
    except OSError as exc:
        print(f"firewall: cannot listen on {args.listen[0]}:{args.listen[1]}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
