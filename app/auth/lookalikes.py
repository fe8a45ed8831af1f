"""Robot ids that look alike (``R1`` spelt with a Cyrillic Er, or a Greek Iota for the digit): compared by their
UTS #39 skeletons, computed by ICU's SpoofChecker, the Unicode Consortium's own implementation."""

from __future__ import annotations

from functools import cache
from typing import Any

import icu  # type: ignore[import-untyped]


@cache
def _checker() -> Any:
    return icu.SpoofChecker()


def skeleton(robot_id: str) -> str:
    """Two ids look alike exactly when their skeletons are equal. A skeleton is for comparing, never for showing:
    it mixes scripts (``R1`` becomes ``Rl``)."""
    result: str = _checker().getSkeleton(0, robot_id)
    return result
