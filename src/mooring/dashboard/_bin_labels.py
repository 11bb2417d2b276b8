"""Short labels for numeric histogram bins: as few significant digits as keep them apart.

Drift reports name numeric bins by their edges with six significant digits
(``[0.0935464, 0.187093)``), too long for a chart's axis. :func:`compact_bins`
rewrites every edge of one histogram with the fewest significant digits (at least
three) that still tell all of its edges apart; category names are left alone.

Examples:
    >>> compact_bins(["< 0.0935464", "[0.0935464, 0.187093)", ">= 0.187093"])
    ['< 0.0935', '[0.0935, 0.187)', '>= 0.187']
    >>> compact_bins(["[1, 1.00012)", "[1.00012, 1.00025)"])
    ['[1, 1.0001)', '[1.0001, 1.0003)']
    >>> compact_bins(["Male", "Female"])
    ['Male', 'Female']
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

__all__ = ["compact_bins", "significant"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# How the monitoring layer and formats/drift name bins: "[a, b)", "a–b" (an en dash),
# "< a", ">= a", "≥ a".
_BIN = re.compile(
    rf"^\s*(?:[\[(]\s*{_NUMBER}\s*,\s*{_NUMBER}\s*[\])]|{_NUMBER}\s*–\s*{_NUMBER}"
    rf"|(?:<|<=|>|>=|≥|≤)\s*{_NUMBER})\s*$"
)
_EDGE = re.compile(_NUMBER)


def significant(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits, plain notation for everyday magnitudes.

    >>> significant(0.0935464, 3), significant(123456.0, 3), significant(2.5e-07, 3)
    ('0.0935', '123456', '2.5e-07')
    """
    if not math.isfinite(value) or value == 0:
        return "0" if value == 0 else str(value)
    magnitude = math.floor(math.log10(abs(value)))
    if -5 <= magnitude < 15:
        text = f"{value:.{max(0, digits - 1 - magnitude)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.{digits}g}"


def compact_bins(labels: Sequence[str], *, least: int = 3, most: int = 6) -> list[str]:
    """``labels`` with every numeric bin edge at the fewest digits that keep edges distinct."""
    numeric = [bool(_BIN.match(label)) for label in labels]
    edges = sorted(
        {
            float(x)
            for label, n in zip(labels, numeric, strict=True)
            if n
            for x in _EDGE.findall(label)
        }
    )
    if not edges:
        return list(labels)
    digits = next(
        (
            d
            for d in range(least, most + 1)
            if len({significant(e, d) for e in edges}) == len(edges)
        ),
        None,
    )
    if digits is None:
        return list(labels)

    def short(match: re.Match[str]) -> str:
        return significant(float(match.group()), digits)

    return [
        _EDGE.sub(short, label) if is_bin else label
        for label, is_bin in zip(labels, numeric, strict=True)
    ]
