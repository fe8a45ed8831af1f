"""The console's colours keep WCAG AA contrast (4.5:1 for text) against the panels they are drawn on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "app" / "ui" / "static" / "console.css"
TEXT_COLOURS = ("text", "muted", "idle", "moving", "working", "charging", "error", "warn")
MARKER_INK = "#0b0f14"  # the status letter inside a marker's disc


def palette() -> dict[str, str]:
    return dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", CSS.read_text()))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", TEXT_COLOURS)
def test_text_colours_on_panels(name: str) -> None:
    colours = palette()
    for background in ("bg", "panel"):
        assert contrast(colours[name], colours[background]) >= 4.5, (name, background)


@pytest.mark.parametrize("status", ["idle", "moving", "working", "charging", "error"])
def test_marker_letters_on_their_discs(status: str) -> None:
    assert contrast(MARKER_INK, palette()[status]) >= 4.5
