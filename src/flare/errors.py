"""Errors that the user can act on: each says what is wrong and what to do."""


class FlareError(Exception):
    """Base class of every error that flare raises on purpose."""


class ConfigError(FlareError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class DataError(FlareError, ValueError):
    """Input data is missing or malformed; the message names the file and row."""

    def __init__(self, message: str, path=None, row=None, hint: str | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        text = where + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.path, self.row, self.hint = path, row, hint
