"""Exception types shared by the definition builder, the validator and the local runner, and how they print."""

import reprlib
from typing import Any


class AirsageError(Exception):
    """Base class of every error airsage raises on purpose."""


class InvalidInput(AirsageError):
    """Bad input from the user (config, parameters, definition JSON, data, URIs): CLI exit code 2."""


class ConfigError(InvalidInput):
    """A configuration field is missing or invalid; the message names the field and the problem."""


class DefinitionError(InvalidInput):
    """A pipeline definition JSON is malformed; the message names the step or reference."""


class StorageError(InvalidInput):
    """An S3/file URI or object key is invalid or escapes the object root."""


class DefinitionInvalid(DefinitionError):
    """A definition with one or more problems, each one line; ``local`` when only the local runner cannot run it.

    ``str()`` is a single line for API callers; the CLIs print :meth:`lines`, the same lines for
    ``validate`` and ``run-local``.
    """

    def __init__(self, problems: list[str], *, local: bool = False, where: str = "definition"):
        self.problems = list(problems)
        self.local = local
        self.where = where
        prefix = LOCAL_PREFIX if local else "invalid pipeline definition: "
        super().__init__(prefix + "; ".join(self.problems))

    def lines(self) -> list[str]:
        """One line per problem, as ``validate`` prints them: ``<where>: [cannot run locally: ]<problem>``."""
        prefix = LOCAL_PREFIX if self.local else ""
        return [f"{self.where}: {prefix}{problem}" for problem in self.problems]


LOCAL_PREFIX = "cannot run locally: "


def error_lines(exc: InvalidInput) -> list[str]:
    """What a CLI prints on stderr for an invalid input (exit code 2)."""
    if isinstance(exc, DefinitionInvalid):
        return exc.lines()
    return [f"error: {one_line(str(exc))}"]


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so an error stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


_SHORT = reprlib.Repr()  # Python 3.11: limits are attributes, not constructor arguments
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 4, 6, 6
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40


def shown(value: Any) -> str:
    """A value as one short, escaped line for a message (bounded however large or deep the value is)."""
    return _SHORT.repr(value)
