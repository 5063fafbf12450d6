"""The one exception type a user ever sees.

Every failure that is the user's to fix (a missing file, a bad preset, a
checkpoint from another tokenizer) is raised as `TacticsError` with a one-line
message that names the file and what to do. The CLI prints it as
`error: <message>` and exits non-zero; the TUI shows it as a notification.
"""


class TacticsError(Exception):
    """A user-facing failure with a one-line, actionable message."""


class Cancelled(TacticsError):
    """Long work stopped because its cancel token was set."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
