"""The user's configuration and secrets: typed, validated at start-up; imports no store or service."""
