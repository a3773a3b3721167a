"""Reply watcher: understands replies to prospecting mail and records opt-outs."""
