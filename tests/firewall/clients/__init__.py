"""Foreign bots: client scripts run in a process of their own with a client library the venv cannot hold."""
