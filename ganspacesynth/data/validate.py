"""Collecting every input problem before anything is written, and reporting them together."""

from __future__ import annotations

import numpy as np

from ..audio.io import rms_db
from ..errors import UserError


class InputProblems(UserError):
    """All problems found in an input, with file names; the CLI lists `.problems` before the message."""

    def __init__(self, where: str, problems: list[str]):
        self.where = where
        self.problems = list(problems)
        n = len(self.problems)
        first = self.problems[0] if self.problems else ""
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in {where}, nothing was written (first: {first})")


def raise_if_problems(where: str, problems: list[str]) -> None:
    if problems:
        raise InputProblems(where, problems)


def check_samples(samples: np.ndarray, min_rms_db: float | None) -> list[str]:
    """Content problems of a note's samples: NaN/inf values, silence (RMS below `min_rms_db`)."""
    samples = np.asarray(samples)
    if not np.all(np.isfinite(samples)):
        return ["contains NaN or infinite samples"]
    if min_rms_db is not None:
        level = rms_db(samples)
        if level < min_rms_db:
            return [f"silent (RMS {level:.1f} dBFS < {min_rms_db:g})"]
    return []
