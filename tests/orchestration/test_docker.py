"""The docker CLI layer: exact identity, state as data, every CLI failure mapped to advice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from src.orchestration.gateway import docker as d
from src.orchestration.gateway.docker import ContainerState, DockerClient, DockerError
from tests.helpers.fake_docker import container_state


class FakeRunner:
    """Answers docker commands from a table: argv prefix -> (returncode, stdout, stderr) or an exception."""

    def __init__(self, answers: dict[tuple[str, ...], object]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, args, **kwargs) -> subprocess.CompletedProcess:
        self.calls.append(args)
        for prefix, answer in self.answers.items():
            if tuple(args[:len(prefix)]) == prefix:
                if isinstance(answer, BaseException):
                    raise answer
                code, out, err = answer  # type: ignore[misc]
                return subprocess.CompletedProcess(args, code, out, err)
        raise AssertionError(f"unexpected command {args}")


def client(answers) -> tuple[DockerClient, FakeRunner]:
    runner = FakeRunner(answers)
    return DockerClient("ibkr-gateway", "gateway", Path("/compose"), runner=runner), runner


@pytest.mark.parametrize(("answer", "kind", "advice"), [
    (FileNotFoundError(), d.MISSING_BINARY, "'docker' not found on PATH"),
    (subprocess.TimeoutExpired(["docker"], 5), d.TIMEOUT, "did not answer within"),
    ((1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"),
     d.DAEMON_DOWN, "start Docker Engine"),
    ((1, "", "error during connect: Get \"http://%2F%2F.%2Fpipe%2FdockerDesktopLinuxEngine/v1.47/version\""),
     d.DAEMON_DOWN, "Docker Desktop"),
    ((1, "", "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"),
     d.PERMISSION, "add this user to the 'docker' group"),
    ((1, "", "Error response from daemon: something odd"), d.FAILED, "something odd"),
])
def test_every_cli_failure_becomes_a_docker_error_with_advice(answer, kind, advice):
    docker, _ = client({("docker", "version"): answer})
    with pytest.raises(DockerError) as error:
        docker.ping()
    assert error.value.kind == kind and advice in error.value.message
    assert "\n" not in error.value.message


def ours(**kwargs) -> tuple[int, str, str]:
    """An inspect answer for the Gateway of project `compose` (the directory /compose), service gateway."""
    return 0, container_state(**{"name": "ibkr-gateway", "project": "compose", **kwargs}), ""


def test_inspect_is_by_exact_name_and_reads_state_as_data():
    docker, runner = client({("docker", "container", "inspect"): ours(health="healthy")})
    state = docker.inspect()
    assert runner.calls == [["docker", "container", "inspect", "--format", d.INSPECT_FORMAT, "ibkr-gateway"]]
    assert state is not None and state.up and state.health == "healthy"
    assert (state.status, state.exit_code, state.started_at) == ("running", 0, "2026-11-25T08:00:00.000000000Z")
    assert (state.name, state.project, state.service) == ("ibkr-gateway", "compose", "gateway")


def test_an_id_prefix_match_is_not_the_container():
    # `docker container inspect ibkr-gateway` would also resolve a container whose ID starts so
    docker, _ = client({("docker", "container", "inspect"): ours(name="some-other-container")})
    assert docker.inspect() is None


@pytest.mark.parametrize(("project", "service", "owner"), [
    (None, None, "no Compose project (made by hand)"),
    ("someone-else", "gateway", "Compose project 'someone-else', service 'gateway'"),
    ("compose", "tws", "Compose project 'compose', service 'tws'"),
])
def test_a_container_with_the_name_but_not_our_labels_is_refused(project, service, owner):
    docker, runner = client({("docker", "container", "inspect"): ours(project=project, service=service,
                                                                      image="ghcr.io/gnzsnz/ib-gateway:10.19")})
    with pytest.raises(DockerError) as error:
        docker.inspect()
    message = error.value.message
    assert error.value.kind == d.FOREIGN and "\n" not in message
    assert owner in message and "ghcr.io/gnzsnz/ib-gateway:10.19" in message and "left untouched" in message
    assert len(runner.calls) == 1  # looked at, nothing else


def test_the_project_follows_composes_rules(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("name: from-file\nservices: {}\n")
    (tmp_path / "override.yml").write_text("name: 'from-override'\n")
    make = lambda env: DockerClient("c", "gateway", tmp_path, env=env)  # noqa: E731
    assert make({"COMPOSE_PROJECT_NAME": "from-env"}).project() == "from-env"
    assert make({}).project() == "from-file"
    assert make({"COMPOSE_FILE": "docker-compose.yml:override.yml"}).project() == "from-override"
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert make({}).project() == tmp_path.name.lower()


def test_absent_container_is_none_not_an_error():
    docker, _ = client({("docker", "container", "inspect"): (1, "", "Error: No such container: ibkr-gateway")})
    assert docker.inspect() is None


@pytest.mark.parametrize(("state", "up", "text"), [
    ({"Status": "running", "Running": True}, True, "running, no healthcheck"),
    ({"Status": "restarting", "Running": True, "ExitCode": 1}, False, "restarting (exit code 1)"),
    ({"Status": "running", "Running": True, "Health": {"Status": "unhealthy"}}, True, "running, health unhealthy"),
    ({"Status": "exited", "Running": False, "ExitCode": 137}, False, "exited (exit code 137)"),
])
def test_container_state_descriptions(state, up, text):
    parsed = ContainerState.from_inspect(state)
    assert parsed.up is up and parsed.describe() == text


def test_compose_v2_is_preferred():
    docker, runner = client({("docker", "compose", "version"): (0, "2.40.3", ""),
                             ("docker", "compose", "up"): (0, "", "")})
    docker.compose_up()
    assert runner.calls[-1] == ["docker", "compose", "up", "-d", "gateway", "firewall"]


def test_compose_v1_is_the_fallback(monkeypatch):
    monkeypatch.setattr(d.shutil, "which", lambda name: "/usr/bin/docker-compose")
    docker, runner = client({("docker", "compose", "version"): (1, "", "docker: 'compose' is not a docker command."),
                             ("docker-compose", "up"): (0, "", "")})
    docker.compose_up()
    assert runner.calls[-1] == ["docker-compose", "up", "-d", "gateway", "firewall"]


def test_no_compose_at_all_says_what_to_install(monkeypatch):
    monkeypatch.setattr(d.shutil, "which", lambda name: None)
    docker, _ = client({("docker", "compose", "version"): (1, "", "docker: 'compose' is not a docker command.")})
    with pytest.raises(DockerError) as error:
        docker.compose_up()
    assert error.value.kind == d.NO_COMPOSE and "install the Compose v2 plugin" in error.value.message


def test_a_tidy_stop_asks_ibc_to_log_out_and_waits_for_the_container_to_exit():
    docker, runner = client({("docker", "exec"): (0, "OK Shutting down: STOP command\n", ""),
                             ("docker", "wait"): (0, "0\n", "")})
    docker.stop(stop_timeout=90)
    assert [c[:2] for c in runner.calls] == [["docker", "exec"], ["docker", "wait"]]  # no SIGTERM needed
    assert runner.calls[0][2] == "ibkr-gateway" and runner.calls[0][-2:] == ["STOP", "10"]


@pytest.mark.parametrize("exec_answer", [(1, "", "Error response from daemon: container is not running"),
                                         (0, "ERROR Command invalid\n", "")], ids=["no-ibc", "refused"])
def test_without_a_tidy_stop_the_container_is_stopped_as_before(exec_answer):
    docker, runner = client({("docker", "exec"): exec_answer, ("docker", "stop"): (0, "ibkr-gateway\n", "")})
    docker.stop(stop_timeout=30)
    assert runner.calls[-1] == ["docker", "stop", "-t", "30", "ibkr-gateway"]


def test_a_tidy_stop_that_does_not_end_in_time_is_followed_by_docker_stop():
    docker, runner = client({("docker", "exec"): (0, "OK Shutting down: STOP command\n", ""),
                             ("docker", "wait"): subprocess.TimeoutExpired(["docker"], 90),
                             ("docker", "stop"): (0, "ibkr-gateway\n", "")})
    docker.stop(stop_timeout=90)
    assert [c[:2] for c in runner.calls] == [["docker", "exec"], ["docker", "wait"], ["docker", "stop"]]


def test_a_restart_logs_out_through_ibc_then_starts_the_container():
    docker, runner = client({("docker", "exec"): (0, "OK Shutting down: STOP command\n", ""),
                             ("docker", "wait"): (0, "0\n", ""), ("docker", "start"): (0, "ibkr-gateway\n", "")})
    docker.restart()
    assert [c[:2] for c in runner.calls] == [["docker", "exec"], ["docker", "wait"], ["docker", "start"]]


def test_a_restart_without_ibc_is_docker_restart_as_before():
    docker, runner = client({("docker", "exec"): (1, "", "Error response from daemon: container is not running"),
                             ("docker", "restart"): (0, "ibkr-gateway\n", "")})
    docker.restart()
    assert runner.calls[-1] == ["docker", "restart", "-t", "10", "ibkr-gateway"]


def test_the_running_digest_is_the_one_for_the_repository_it_was_started_as():
    from src.orchestration.gateway.docker import pinned_digest, running_digest

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert pinned_digest(f"ghcr.io/x/gw:10@{a}") == a and pinned_digest("ghcr.io/x/gw:10") is None
    both = [f"mirror.example:5000/x/gw@{b}", f"ghcr.io/x/gw@{a}"]
    assert running_digest(f"ghcr.io/x/gw:10@{a}", both) == a
    assert running_digest("mirror.example:5000/x/gw:10", both) == b  # a registry's port is not a tag
    assert running_digest("ubuntu:24.04", [f"ubuntu@{a}"]) == a
    assert running_digest("docker.io/library/ubuntu:24.04", [f"ubuntu@{a}"]) == a  # one digest: Docker's name
    assert running_digest("local:1", []) is None and running_digest("x:1", both) is None
