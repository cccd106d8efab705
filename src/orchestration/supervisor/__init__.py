"""The supervisor (`--supervise`): the loop (`supervise`), the Gateway's outages and the recovery ladder
(`watch`), the daily cycle (`cycle`). Imports the machine room and lower, never ops."""
