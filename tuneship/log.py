"""tuneship's progress messages: `logging` under the `tuneship` logger, shown on standard output by default.

Library code reports through `get_logger(__name__)`. The `tuneship` logger has one handler of its own that
prints the bare message (warnings prefixed with "warning: ") to whatever `sys.stdout` is at the time, so
the CLI and a notebook see progress as before. A Python caller silences it with
`tuneship.log.set_verbosity(logging.WARNING)` (or `logging.getLogger("tuneship").setLevel(...)`), or hands
the records to its own logging setup with `tuneship.log.use_root_handlers()`.
"""

from __future__ import annotations

import logging
import sys

ROOT = "tuneship"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


class _StdoutHandler(logging.StreamHandler):
    """Writes to the current `sys.stdout` (pytest, notebooks and the CLI's pipes replace it after import)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property always reads sys.stdout
        pass


_handler: logging.Handler | None = None


def _configure() -> None:
    global _handler
    if _handler is None:
        _handler = _StdoutHandler()
        _handler.setFormatter(_Formatter("%(message)s"))
        root = logging.getLogger(ROOT)
        root.addHandler(_handler)
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        root.propagate = False


def get_logger(name: str) -> logging.Logger:
    """The logger for module `name` (a `tuneship.*` name), with tuneship's default handler in place."""
    _configure()
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def set_verbosity(level: int | str) -> None:
    """Show tuneship's messages from `level` up (`logging.WARNING` silences progress, `logging.INFO` shows it)."""
    _configure()
    logging.getLogger(ROOT).setLevel(level)


def use_root_handlers() -> None:
    """Drop tuneship's own handler and let records propagate to the application's logging configuration."""
    _replace_handler(logging.NullHandler(), propagate=True)


def use_default_handler() -> None:
    """tuneship's own handler again (the default): bare messages on standard output, no propagation."""
    _replace_handler(None, propagate=False)
    _configure()


def _replace_handler(handler: logging.Handler | None, propagate: bool) -> None:
    global _handler
    root = logging.getLogger(ROOT)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = handler
    if handler is not None:
        root.addHandler(handler)
    root.propagate = propagate
