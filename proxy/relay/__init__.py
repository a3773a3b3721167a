"""The SMTP edge and the pipeline of named steps every message takes before it leaves."""
