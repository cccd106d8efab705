"""The alternatives the benchmark runs side by side with this project.

* `handoff.py`: the handoff's sample orchestrator (task-3.5 §5), re-implemented for its timing.
* `common_practice.sh`: what users of the popular Gateway image do: `docker compose up -d
  --wait`, a fixed sleep (ib_async's Watchdog waits a fixed 30 s `appStartupTime`), then start
  the bot.
* `gameplan_quadratic.py`: the gameplan's duplicate-symbol check before issue "Live money" §7
  (quadratic), the baseline of `python -m bench.gameplan`.

The first two start the same bot (`python -m src.main`) with the same arguments as the orchestrator.
"""
