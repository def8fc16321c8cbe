"""Errors about the user's media: one line naming the path and what to do."""


from engine.errors import UserError


class MediaError(UserError):
    """Media that cannot be used as asked. str() is one line: '<path>: <reason>'."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}", field="media")
        self.path = path
        self.reason = reason
