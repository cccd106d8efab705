"""Secrets: canary values for the webhook token and the IBKR credentials never reach a log file, a
journal line, an alert payload, stderr or an exception text; the bot never even receives them; and
the Compose files publish every port on 127.0.0.1 only (read from `docker compose config`).
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from src.orchestration.machine.bot import running_bot
from testkit.gateway import COMPOSE_DIR, SIM_COMPOSE_FILE, compose
from testkit.stack import secret_hits, stop_bot
from testkit.webhook import CANARY_TOKEN
from tests.helpers.fake_docker import container_state, healthy_daemon, rule
from tests.helpers.listeners import tcp_listener
from tests.integration.docker_env import require_docker

PASSWORD = "canary-PASSWORD-8d1f0b2e"  # noqa: S105 - a canary, the point is to look for it
USERID = "canary-userid-5e7a"
CANARIES = (CANARY_TOKEN, PASSWORD, USERID)
CREDENTIALS = {"TWS_PASSWORD": PASSWORD, "TWS_USERID": USERID}
ENV_DUMP = f"{sys.executable} -c \"import os, sys; print(dict(os.environ)); sys.exit(1)\""  # a bot that crashes loudly


@pytest.mark.docker
def test_real_runs_leave_no_canary_in_any_output(stack):
    """Success, Strategy C and a failure on real Docker: every log, journal line, payload and stderr is clean."""
    stack.extra = dict(CREDENTIALS)
    first = stack.orchestrate()  # the container is created, the bot connects: exit 0
    assert first.code == 0, first.stderr
    stop_bot(stack.state_dir)
    invalid = stack.tmp / "plans" / "invalid.json"
    invalid.write_text(json.dumps({"date": PASSWORD}))  # a plan quoting the password: its error does too
    second = stack.orchestrate(GAMEPLAN_PATH=str(invalid))  # Strategy C: exit 2
    assert second.code == 2, second.stderr
    stop_bot(stack.state_dir)
    third = stack.orchestrate(GATEWAY_PORT="1", GATEWAY_HEALTH_TIMEOUT="1")  # never healthy: restart, fail
    assert third.code == 1, third.stderr
    outputs = {f"stderr of run {n}": run.stderr for n, run in enumerate((first, second, third), 1)}
    assert len(stack.hook.received) >= 5
    assert secret_hits(stack, CANARIES, **outputs) == []


def test_an_error_text_echoing_a_secret_is_masked_everywhere(world, fake_docker):
    """Docker's own error output quoting the password (an exception text) and a crash report with it."""
    echo = rule("container inspect", stdout=container_state().replace('"ExitCode": 0', f'"ExitCode": "{PASSWORD}"'))
    fake_docker.rules([echo, *healthy_daemon()])
    world.extra.update(CREDENTIALS)
    run = world.orchestrate()
    assert run.code == 1 and "***" in run.record["reason"]  # the reason kept, the secret masked
    assert secret_hits(world, CANARIES, stderr=run.stderr) == []


def test_a_gameplan_error_quoting_the_password_is_masked_everywhere(world):
    """The loader's reason quotes the offending value; the journal, the alert and the log must not."""
    world.extra.update(CREDENTIALS)
    plan = world.tmp / "plans" / "pasted.json"
    plan.parent.mkdir(parents=True)
    plan.write_text(json.dumps({"date": PASSWORD}))
    run = world.orchestrate(GAMEPLAN_PATH=str(plan))
    assert run.code == 2 and "***" in run.record["gameplan"]["reason"]
    assert secret_hits(world, CANARIES, stderr=run.stderr) == []


def test_the_bot_never_receives_the_ibkr_password_or_the_webhook_url(world):
    """Least privilege: the bot talks to the Gateway, which holds the credentials. A bot that dumps its
    environment when it crashes (as some libraries do) must have nothing secret to dump."""
    world.extra.update(CREDENTIALS)
    run = world.orchestrate(BOT_COMMAND=ENV_DUMP)
    assert run.code == 1
    assert "NOTIFY_SOCKET" in Path(run.record["bot_log"]).read_text()  # the dump happened
    assert secret_hits(world, CANARIES, stderr=run.stderr) == []


def test_a_running_bots_environment_holds_no_secret(world):
    world.extra.update(CREDENTIALS)
    run = world.orchestrate()
    assert run.code == 0, run.stderr
    environ = Path(f"/proc/{running_bot(world.state_dir)}/environ").read_bytes().decode("utf-8", "replace")
    assert [c for c in CANARIES if c in environ] == []


def quoting(text: str):
    """A TCP server posing as a Gateway: it answers the API greeting with `text` as its "version"."""
    def serve(conn: socket.socket) -> None:
        conn.recv(1024)
        payload = text.encode() + b"\0"
        conn.sendall(struct.pack(">I", len(payload)) + payload)
    return serve


@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
@pytest.mark.parametrize("command", [["src.orchestration.startup", "--status"], ["src.orchestration.ops.status"]],
                         ids=["startup --status", "status"])
def test_status_never_shows_a_secret_even_when_docker_and_the_gateway_quote_one(world, fake_docker, tmp_path,
                                                                               command, json_output):
    """`--status` prints what Docker and the Gateway said, for the operator to act on; a secret in
    it (the TWS password from TWS_PASSWORD_SECRET_FILE, the webhook URL or its token) is masked."""
    password_file = tmp_path / "tws_password"
    password_file.write_text(PASSWORD + "\n")
    quoted = f"password={PASSWORD} webhook={world.hook.url}"
    fake_docker.rules([rule("container inspect", code=1, stderr=f"Error response from daemon: {quoted}\n"),
                       *healthy_daemon()])
    with tcp_listener(quoting(quoted)) as port:
        done = subprocess.run([sys.executable, "-m", *command, *(["--json"] if json_output else [])],
                              cwd=world.tmp, capture_output=True, text=True,
                              env=world.env(GATEWAY_PORT=str(port), TWS_PASSWORD_SECRET_FILE=str(password_file)),
                              timeout=30)
    assert done.returncode == 1, done.stderr  # not up
    shown = json.dumps(json.loads(done.stdout)) if json_output else done.stdout
    assert "'docker container inspect' failed: Error response from daemon: password=***" in shown  # Docker's error
    assert "protocol_error: bad version reply ['password=***" in shown  # and the Gateway's, both shown
    leaks = [s for s in (PASSWORD, CANARY_TOKEN, world.hook.url) if s in done.stdout + done.stderr]
    assert leaks == []


@pytest.mark.docker
@pytest.mark.parametrize("files", ["docker-compose.yml", SIM_COMPOSE_FILE], ids=["production", "simulator"])
def test_compose_publishes_every_port_on_loopback_only_and_never_the_password(files, tmp_path):
    require_docker()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "COMPOSE_FILE": files,
           "COMPOSE_PROJECT_NAME": "zt-test-config", **CREDENTIALS}
    config = json.loads(compose(env, "config", "--format", "json").stdout)
    ports = [(name, port) for name, service in config["services"].items() for port in service.get("ports", [])]
    assert ports, "no published port: the check would prove nothing"
    assert [(name, p) for name, p in ports if p.get("host_ip") != "127.0.0.1"] == []
    assert all(s.get("network_mode") != "host" for s in config["services"].values())
    assert PASSWORD not in json.dumps(config)  # a Docker secret file, never an environment variable
    assert (COMPOSE_DIR / files.split(":")[0]).exists()
