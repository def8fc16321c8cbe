"""The one base class of everything a user can fix (issue 15).

A `UserError` says, in one line, which thing is at fault (a file, a clip, a timecode, a setting)
and what to do; it never names a command-line flag, because the panel, the service and the host
add-ons show the same message. `field` names the request field at fault, when there is one, in
the seam's words (`media`, `out`, `takes`, ...): each front end maps it to its own (a CLI flag, a
panel control, a JSON pointer in an HTTP 422). Anything else that escapes the engine is a bug and
is shown as one (a traceback in the CLI, a Details box in the panel, a 500 in the service).
"""
from __future__ import annotations

from typing import Optional


class UserError(ValueError):
    """Something the user can fix. A ValueError so that older callers that caught ValueError
    still catch it."""

    def __init__(self, message: str, *, field: Optional[str] = None):
        super().__init__(message)
        self.field = field


class RequestError(UserError):
    """A request setting out of range (guidance, steps, takes, seed, a range of the media)."""


__all__ = ["RequestError", "UserError"]
