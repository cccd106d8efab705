"""Operator tools: the startup CLI (`commands`), `--status` (`status`), `shutdown`, the systemd unit and
the Task Scheduler task (`deploy`), logging set-up (`logsetup`). The highest room below `startup`."""
