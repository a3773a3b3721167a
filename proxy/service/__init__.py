"""The running service: start-up, status, control socket, rule reload, systemd integration, logging."""
