"""Errors of the sinks."""


class SinkError(RuntimeError):
    """A write or query to the store failed; the rows are kept for the next flush."""
