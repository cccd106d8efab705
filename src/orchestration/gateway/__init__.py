"""The Gateway room: the docker CLI (`docker`), IBC's log and command server (`ibc`), the login budget
(`logins`), bringing the container up by paying a login (`bringup`), the order firewall's container
(`firewallwatch`). Imports only the orchestration base (config, health, exitcodes) and lower rooms."""
