"""The severity convention of corruption benchmarks (ImageNet-C / CIFAR-10-C): levels 1 to 5.

A spec gives either one level (``severity: 5``) or several (``severity: [1, 3, 5]``); shifted
test sets are keyed ``"<corruption>@<severity>"``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

LEVELS = (1, 2, 3, 4, 5)


def _check_levels(value: int | list[int]) -> int | list[int]:
    levels = [value] if isinstance(value, int) else value
    if not levels:
        raise ValueError("give at least one severity")
    bad = [level for level in levels if level not in LEVELS]
    if bad:
        raise ValueError(f"severities must be in {list(LEVELS)}, got {bad}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"severities must not repeat, got {levels}")
    return value


Severity = Annotated[int | list[int], AfterValidator(_check_levels)]
"""A pydantic field type: one severity level or a list of distinct levels, each in 1..5."""


def as_levels(severity: int | list[int]) -> list[int]:
    """The severity levels of a :data:`Severity` value, in the order given."""
    return [severity] if isinstance(severity, int) else list(severity)


def domain_key(corruption: str, severity: int) -> str:
    """The ``DataBundle.domains`` key of one corruption at one severity, e.g. ``"contrast@5"``."""
    return f"{corruption}@{severity}"
