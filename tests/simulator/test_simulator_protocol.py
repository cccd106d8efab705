"""The simulator on the wire: raw sockets in-process, and the CLI as a subprocess.

The framing here is written independently of ``src.simulator.protocol`` so a
mistake there cannot hide behind the same mistake in the test.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import time
from pathlib import Path

import pytest

from src.simulator import GatewaySimulator
from tests.helpers.simulator import running_simulator

ACCOUNTS = "DU123456,DU234567"
IN_USE_TEXT = "Unable to connect as the client id is already in use. Retry with a unique client id."
FARM_CODES = ["2104", "2106", "2158"]


# --- a minimal independent TWS API client -------------------------------------------------------


def frame(*fields: object) -> bytes:
    payload = "".join(f"{field}\0" for field in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return data


def recv_fields(sock: socket.socket) -> list[str]:
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, length).decode().split("\0")[:-1]


def open_api(port: int, versions: str = "v157..178", timeout: float = 2.0) -> socket.socket:
    """Connect and send ``API\\0`` + the version range, as ib_async does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions.encode())
    return sock


def start_api(port: int, client_id: int) -> socket.socket:
    """Handshake and startApi; return the socket with the reply to startApi unread."""
    sock = open_api(port)
    assert recv_fields(sock)[0] == "178"
    sock.sendall(frame(71, 2, client_id, ""))
    return sock


def connect_client(port: int, client_id: int) -> socket.socket:
    """A logged-in API client whose greeting (accounts, order id, 3 notices) has been read."""
    sock = start_api(port, client_id)
    for _ in range(5):
        recv_fields(sock)
    return sock


def assert_closed_without_reply(sock: socket.socket) -> None:
    """The server closed the connection without sending a byte (EOF, or RST if our bytes were unread)."""
    try:
        assert sock.recv(1024) == b""
    except ConnectionResetError:
        pass


# --- handshake and greeting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("versions", "expected"),
    [("v157..178", "178"), ("v100..213 +PACEAPI", "178"), ("v100..150", "150")],
)
def test_version_reply_has_version_and_connection_time(versions: str, expected: str) -> None:
    with running_simulator() as sim, open_api(sim.port, versions) as sock:
        version, connection_time = recv_fields(sock)
    assert version == expected
    assert re.fullmatch(r"\d{8} \d{2}:\d{2}:\d{2} \S.*", connection_time)


def test_client_above_supported_versions_is_closed() -> None:
    with running_simulator() as sim, open_api(sim.port, "v201..213") as sock:
        assert_closed_without_reply(sock)


def test_start_api_gets_accounts_next_id_and_farm_notices() -> None:
    with running_simulator() as sim, start_api(sim.port, 1) as sock:
        assert recv_fields(sock) == ["15", "1", ACCOUNTS]
        assert recv_fields(sock) == ["9", "1", "1"]
        notices = [recv_fields(sock) for _ in FARM_CODES]
    assert [n[:4] for n in notices] == [["4", "2", "-1", code] for code in FARM_CODES]
    assert all(n[4].endswith("connection is OK:" + n[4].split(":")[-1]) for n in notices)
    assert all(len(n) == 6 and n[5] == "" for n in notices)  # advancedOrderRejectJson from v166


def test_error_notices_omit_advanced_reject_field_before_v166() -> None:
    with running_simulator() as sim, open_api(sim.port, "v100..165") as sock:
        assert recv_fields(sock)[0] == "165"
        sock.sendall(frame(71, 2, 1, ""))
        notices = [recv_fields(sock) for _ in range(5)][2:]
    assert [len(n) for n in notices] == [5, 5, 5]


def test_startup_requests_get_their_end_messages() -> None:
    requests_and_replies = [
        (frame(61, 1), ["62", "1"]),  # reqPositions -> positionEnd
        (frame(5, 1), ["53", "1"]),  # reqOpenOrders -> openOrderEnd
        (frame(99, 0), ["102"]),  # reqCompletedOrders -> completedOrdersEnd
        (frame(6, 2, 1, "DU234567"), ["54", "1", "DU234567"]),  # reqAccountUpdates -> accountDownloadEnd
        (frame(76, 1, 7, "DU123456", "", 0), ["74", "1", "7"]),  # reqAccountUpdatesMulti -> ...MultiEnd
        (frame(7, 3, 8, 0, "", "", "", "", "", ""), ["55", "1", "8"]),  # reqExecutions -> execDetailsEnd
        (frame(16, 1), ["53", "1"]),  # reqAllOpenOrders -> openOrderEnd
        (frame(8, 1, 1), ["9", "1", "1"]),  # reqIds -> nextValidId
        (frame(17, 1), ["15", "1", ACCOUNTS]),  # reqManagedAccts -> managedAccounts
        (frame(62, 1, 9, "All", "NetLiquidation"), ["64", "1", "9"]),  # reqAccountSummary -> ...End
        (frame(74, 1, 10, "DU123456", ""), ["72", "1", "10"]),  # reqPositionsMulti -> positionMultiEnd
    ]
    with running_simulator() as sim, connect_client(sim.port, 3) as sock:
        for request, reply in requests_and_replies:
            sock.sendall(request)
            assert recv_fields(sock) == reply, request


def test_current_time_is_epoch_seconds_now() -> None:
    with running_simulator() as sim, connect_client(sim.port, 1) as sock:
        sock.sendall(frame(49, 1))
        msg_id, version, seconds = recv_fields(sock)
    assert (msg_id, version) == ("49", "1")
    assert abs(int(seconds) - time.time()) < 5


def test_unknown_and_malformed_requests_are_answered_with_errors_and_the_connection_lives() -> None:
    # A real Gateway answers every request; the simulator never drops one silently (a client would wait).
    with running_simulator() as sim, connect_client(sim.port, 1) as sock:
        sock.sendall(frame(999, 1) + frame("garbage") + frame() + frame(7) + frame(6, 2, 0, "DU123456"))
        unknown, garbage, empty, short = (recv_fields(sock) for _ in range(4))
        sock.sendall(frame(49, 1))
        assert recv_fields(sock)[0] == "49"  # the unsubscribe (6, 2, 0, ...) got nothing, as from TWS
    assert unknown[:4] == ["4", "2", "-1", "503"] and "message 999" in unknown[4]
    assert [m[:4] for m in (garbage, empty, short)] == [["4", "2", "-1", "320"]] * 3
    assert "reqExecutions (message 7) is malformed" in short[4]


def test_a_request_that_is_not_simulated_gets_an_error_naming_it_with_its_request_id() -> None:
    with running_simulator() as sim, connect_client(sim.port, 1) as sock:
        sock.sendall(frame(81, 42, "SP"))  # reqMatchingSymbols(reqId 42)
        assert recv_fields(sock) == ["4", "2", "42", "503",
                                     "The Gateway simulator does not implement reqMatchingSymbols (message 81)", ""]
        sock.sendall(frame(2, 2, 42) + frame(59, 1, 3) + frame(49, 1))  # cancels and settings: no answer
        assert recv_fields(sock)[0] == "49"


def test_non_api_peer_is_closed_and_others_still_served() -> None:
    with running_simulator() as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as junk:
            junk.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert_closed_without_reply(junk)
        with connect_client(sim.port, 1) as sock:
            sock.sendall(frame(49, 1))
            assert recv_fields(sock)[0] == "49"


# --- before login -------------------------------------------------------------------------------


def test_close_before_login_gives_eof() -> None:
    with running_simulator(login_delay=30, before_login="close") as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as sock:
            assert sock.recv(1024) == b""
        with open_api(sim.port) as sock:
            assert_closed_without_reply(sock)
        assert not sim.logged_in


def test_silent_before_login_sends_nothing() -> None:
    with running_simulator(login_delay=30, before_login="silent") as sim:
        with open_api(sim.port, timeout=0.3) as sock, pytest.raises(TimeoutError):
            sock.recv(1024)


def test_refuse_before_login_then_serves_after_login() -> None:
    with running_simulator(login_delay=0.5, before_login="refuse") as sim:
        assert sim.port != 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", sim.port), timeout=2)
        assert sim.wait_logged_in(timeout=5)
        with open_api(sim.port) as sock:
            assert recv_fields(sock)[0] == "178"


def test_close_before_login_then_serves_after_login() -> None:
    with running_simulator(login_delay=0.3, before_login="close") as sim:
        assert sim.wait_logged_in(timeout=5)
        with start_api(sim.port, 1) as sock:
            assert recv_fields(sock) == ["15", "1", ACCOUNTS]


# --- modes after login --------------------------------------------------------------------------


def test_silent_mode_never_answers() -> None:
    with running_simulator(mode="silent") as sim:
        assert sim.wait_logged_in(timeout=5)
        with open_api(sim.port, timeout=0.3) as sock, pytest.raises(TimeoutError):
            sock.recv(1024)


def test_no_accounts_mode_sends_empty_account_list() -> None:
    with running_simulator(mode="no-accounts") as sim, start_api(sim.port, 1) as sock:
        assert recv_fields(sock) == ["15", "1", ""]
        assert recv_fields(sock) == ["9", "1", "1"]


def test_client_id_in_use_mode_rejects_every_start_api() -> None:
    with running_simulator(mode="client-id-in-use") as sim, start_api(sim.port, 7) as sock:
        assert recv_fields(sock) == ["4", "2", "-1", "326", IN_USE_TEXT, ""]
        assert sock.recv(1024) == b""


def test_duplicate_client_id_is_rejected_while_first_stays_connected() -> None:
    with running_simulator() as sim, connect_client(sim.port, 5) as first:
        with start_api(sim.port, 5) as second:
            assert recv_fields(second)[:4] == ["4", "2", "-1", "326"]
            assert second.recv(1024) == b""
        with connect_client(sim.port, 6) as other:  # another id is fine meanwhile
            other.sendall(frame(49, 1))
            assert recv_fields(other)[0] == "49"
        first.sendall(frame(49, 1))
        assert recv_fields(first)[0] == "49"


def test_client_id_is_free_again_after_disconnect() -> None:
    with running_simulator() as sim:
        connect_client(sim.port, 5).close()
        deadline = time.monotonic() + 10  # how long to look, not a bound: it is free within milliseconds
        while True:  # the server notices the close asynchronously
            with start_api(sim.port, 5) as sock:
                if recv_fields(sock)[0] == "15":
                    break
            assert time.monotonic() < deadline, "client id 5 still marked in use"
            time.sleep(0.02)


def test_stop_closes_open_connections() -> None:
    with running_simulator() as sim:
        sock = connect_client(sim.port, 1)
        sim.stop()
    with sock:
        assert sock.recv(1024) == b""


def test_start_raises_when_port_is_taken() -> None:
    with running_simulator() as first:
        with pytest.raises(OSError):
            GatewaySimulator(port=first.port).start()


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        GatewaySimulator(mode="sleepy")
    with pytest.raises(ValueError):
        GatewaySimulator(before_login="maybe")


# --- the command line ---------------------------------------------------------------------------


def test_cli_logs_ibc_lines_and_exits_0_on_sigterm(run_cli) -> None:
    sim = run_cli("--login-delay", "0.2", "--before-login", "silent")
    port = sim.port
    sim.wait_for("IBC: Login dialog WINDOW_OPENED")
    idle = socket.create_connection(("127.0.0.1", port), timeout=2)  # an open connection must not delay exit
    sim.wait_for("IBC: Login has completed")
    sim.wait_for("IBC: Configuration tasks completed")
    with connect_client(port, 4):
        sim.wait_for("client 4 connected")
    sim.wait_for("client 4 disconnected")
    sim.process.send_signal(signal.SIGTERM)
    assert sim.process.wait(timeout=3) == 0
    idle.close()
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", sim.lines[0])


def test_cli_exit_after_from_environment_crashes_with_code_1(run_cli) -> None:
    sim = run_cli(env={"SIM_EXIT_AFTER": "0.5", "SIM_MODE": "no-accounts"})
    sim.wait_for("mode: no-accounts")
    assert sim.process.wait(timeout=5) == 1
    assert time.time() - sim.started_at >= 0.5


def test_cli_writes_state_file_at_login(run_cli, tmp_path: Path) -> None:
    state_file = tmp_path / "state" / "sim.json"
    sim = run_cli("--login-delay", "0.3", "--state-file", str(state_file))
    port = sim.port
    assert not state_file.exists()
    sim.wait_for("IBC: Login has completed")
    deadline = time.monotonic() + 5
    while not state_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    state = json.loads(state_file.read_text())
    assert state["port"] == port
    assert state["pid"] == sim.process.pid
    assert sim.started_at + 0.3 <= state["logged_in_at"] <= time.time()
    assert [p.name for p in state_file.parent.iterdir()] == ["sim.json"]  # no temp file left


def test_cli_rejects_bad_mode_from_environment(run_cli) -> None:
    sim = run_cli(env={"SIM_MODE": "sleepy"})
    assert sim.process.wait(timeout=5) == 2
