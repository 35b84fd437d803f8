"""User-facing errors. Anything raised as an ``InfobenchError`` is printed without a traceback."""

from __future__ import annotations


class InfobenchError(Exception):
    """An error caused by the user's input (spec, files, arguments); the CLI exits with code 2."""

    exit_code = 2


class SpecError(InfobenchError):
    """A spec failed validation. ``problems`` lists one message per problem, each naming its key path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the spec\n{lines}")


class RegistryError(InfobenchError, KeyError):
    """An unknown name was looked up in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(InfobenchError):
    """A data file is missing or malformed; the message names the path and the expected format."""


class DivergedError(RuntimeError):
    """A run's loss or predictions turned non-finite; the runner records it as ``diverged``."""
