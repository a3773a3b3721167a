"""The IMAP side of the reply watcher: connection, bounded fetches, response parsing, folder following."""
