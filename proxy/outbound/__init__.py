"""Handing messages on: upstream SMTP or capture, the durable spool, retries and delivery reports."""
