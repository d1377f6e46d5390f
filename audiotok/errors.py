"""Error types that the command-line layer turns into one-line messages.

`AudiotokError` is a failure of the whole run (exit 1), `UsageError` a bad
argument (exit 2), and `ItemError` a failure of one item of a table: the
run counts it, names it in a warning and goes on.
"""


class AudiotokError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class UsageError(AudiotokError):
    exit_code = 2


class ItemError(Exception):
    """One item (an utterance, a sample) could not be processed."""


class AlreadyDone(Exception):
    """The output was finished by an earlier run with the same signature: nothing to do (exit 0)."""

    def __init__(self, output: str):
        super().__init__(output)
        self.output = output
