"""What the tests, the benchmark and the demo share, and the product never imports.

* `testkit.docker`: the docker CLI, bounded (`docker`, `DockerFailed`), whether Docker is usable
  (`docker_problem`), containers as data (`container_state`, `wait_for_health`, ...), `free_port`.
* `testkit.gateway`: the simulator Gateway under Compose, in a project of its own (`SimGateway`:
  `up`, `down`, `compose_env`), with the production service and container layout.
* `testkit.plans`: the gameplan for today (`write_plan`), from the documented example.
* `testkit.rundir`: one run's state/, logs/ and plans/today.json (`RunDir`).
* `testkit.repo_env`: an environment for an orchestrator CLI that the developer's own `.env` cannot steer.
* `testkit.schedule`: IBKR's calendar kept out of a run (`off_calendar`), or a reset window set around now.
* `testkit.webhook`: a local stand-in for a Discord webhook that records every alert (`WebhookReceiver`).

`src/` never imports this package; `tests/` and `bench/` do (neither imports the other).
"""
