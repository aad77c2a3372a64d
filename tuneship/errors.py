"""Errors that the CLI reports as one clear line instead of a traceback."""


class TuneshipError(Exception):
    """Base class: the message says what went wrong and what to do next."""


class DataError(TuneshipError, ValueError):
    """Bad input data: the message names the file, row and column."""


class ConfigError(TuneshipError, ValueError):
    """An option with a value it cannot take (a config built in Python, a flag, a config file alike): the message
    names the option."""


class MissingDependencyError(TuneshipError, ImportError):
    """An optional dependency (an install extra) is missing."""


def require(module: str, extra: str):
    """Import `module`, or raise an error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"`{module}` is not installed ({error}); install the `{extra}` extra: pip install '.[{extra}]' in a clone of "
            f"tuneship, or pip install 'tuneship[{extra}] @ git+https://github.com/tuneship/tuneship'"
        ) from error
