"""Errors meant for the user: each carries a one-line message that says what to do next."""


class QabotError(Exception):
    """A failure the user can act on; front ends print its message, never a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(QabotError):
    """An invalid setting or config file."""


class IndexMissingError(QabotError):
    """A missing, empty or unusable index."""


class InputError(QabotError):
    """A question or path the engine cannot use."""


class ServiceUnavailableError(QabotError):
    """A service qabot depends on (the Milvus store) cannot be reached or failed; for the operator to fix.

    Front ends that serve other people (the Telegram bot) log the message and apologise instead of
    showing it; the next question tries again.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)
