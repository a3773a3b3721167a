"""The one exception the MIME functions raise."""


class MimeError(Exception):
    """The message cannot be modified safely; the caller should relay it unchanged or hold it."""
