"""Cancellation shared by every long operation (sampling, decoding, training)."""


class Cancelled(Exception):
    """Raised between units of work when the caller's cancel check returns True."""
