"""The lowest room, shared by every process (the orchestrator, the firewall, the bot, the simulator).

Each fact once: every setting (`settings`), every file name under state/ (`statefiles`), the trading
calendar and IBKR's reset windows (`schedule`, `calendars`, `resetwindows`), the argument checks (`cli`),
atomic writes, secret masking, the JSON-lines journals, the bot's lock, sd_notify, the shared durations.
Nothing here imports any other room of `src/`.
"""
