"""Digits-C: the digits test split under CIFAR-10-C style corruptions (see ``corruptions``)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.corruptions import CORRUPTIONS, corrupt
from infobench.data.digits import digit_files, digit_splits
from infobench.data.severity import Severity, as_levels, domain_key
from infobench.data.splits import SplitParams
from infobench.registry import register


def domain_rng(seed: int, corruption: str, severity: int) -> np.random.Generator:
    """The generator of one domain's noise, a function of (run seed, corruption, severity) only.

    Deriving it per domain (rather than drawing domains from one stream) keeps every domain the
    same whichever other domains a spec asks for. ``crc32`` is used because ``hash(str)`` is
    salted per process.
    """
    # SeedSequence takes non-negative integers only; fold negative seeds into that range.
    return np.random.default_rng([seed % 2**63, zlib.crc32(corruption.encode()), severity])


@register("dataset", "digits-c")
class DigitsC(Dataset):
    """Digits with test sets shifted by CIFAR-10-C style corruptions (noise, blur, digital, geometric)."""

    class Params(SplitParams):
        """The digits split, plus which corruptions and severities become shifted test domains."""

        corruptions: list[str] = Field(
            default_factory=lambda: list(CORRUPTIONS),
            description=f"corruptions applied to the test split, in domain order; any of {', '.join(CORRUPTIONS)}",
        )
        severity: Severity = Field(
            5, description="severity 1-5, or a list of them; each corruption gets every severity"
        )

        @field_validator("corruptions")
        @classmethod
        def _known_corruptions(cls, names: list[str]) -> list[str]:
            unknown = [name for name in names if name not in CORRUPTIONS]
            if unknown:
                raise ValueError(
                    f"unknown corruption(s) {', '.join(map(repr, unknown))}; valid: {', '.join(CORRUPTIONS)}"
                )
            if not names:
                raise ValueError("give at least one corruption")
            if len(set(names)) != len(names):
                raise ValueError(f"corruptions must not repeat, got {names}")
            return names

    # Corruptions are applied to the test split only; the split itself is SplitParams'.
    test_only = ("corruptions", "severity")

    def files(self) -> list[Path]:
        return digit_files()

    def load(self, seed: int) -> DataBundle:
        """Clean digits splits; ``domains["<corruption>@<severity>"]`` is the corrupted test split.

        Domains are ordered by corruption (in ``corruptions`` order), then by severity (in
        ``severity`` order); their noise depends on ``seed``, the clean splits do not.
        """
        train, val, test = digit_splits(self.params)
        domains = {
            domain_key(name, level): Split(
                corrupt(test.x, name, level, domain_rng(seed, name, level)), test.y.copy()
            )
            for name in self.params.corruptions
            for level in as_levels(self.params.severity)
        }
        return DataBundle(
            name="digits-c",
            train=train,
            val=val,
            test=test,
            num_classes=10,
            input_shape=(1, 8, 8),
            domains=domains,
        )
