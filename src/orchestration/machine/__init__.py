"""The start-up machine: its states (`states`), the generic table-driven runner (`engine`), what a run
carries (`context`), each state's handler (`steps`), the plan in force handed to the firewall and the bot
(`handoff`), the bot process (`bot`). Imports the Gateway room and lower, never the supervisor or ops."""
