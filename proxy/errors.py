"""The errors every layer may raise: a leaf that imports nothing from the package."""


class UserError(Exception):
    """A problem the user can fix; the CLI prints it and exits 1."""


class StoreError(Exception):
    """The store cannot be used right now (missing, locked, read-only, disk full, corrupt, server down)."""
