"""The console's colours keep WCAG AA contrast (4.5:1 for text) against the panels they are drawn on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "app" / "web" / "ui" / "static" / "console.css"
TEXT_COLOURS = ("text", "muted", "idle", "moving", "working", "charging", "error", "warn")
THEMES = {"dark": ":root {", "light": ':root[data-theme="light"] {'}


def palette(theme: str = "dark") -> dict[str, str]:
    """The theme's colours: the dark ones (:root), with the light block's over them for the light theme."""
    css = CSS.read_text()
    colours: dict[str, str] = {}
    for name in ("dark", theme):
        block = css[css.index(THEMES[name]) :]
        colours.update(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", block[: block.index("}")]))
    return colours


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("name", TEXT_COLOURS)
def test_text_colours_on_panels(theme: str, name: str) -> None:
    colours = palette(theme)
    for background in ("bg", "panel", "card"):  # the page, its panels, the alert cards
        assert contrast(colours[name], colours[background]) >= 4.5, (theme, name, background)


@pytest.mark.parametrize("status", ["idle", "moving", "working", "charging", "error", "warn"])
def test_marker_letters_on_their_discs(status: str) -> None:
    colours = palette()
    assert contrast(colours["ink"], colours[f"disc-{status}"]) >= 4.5


def test_the_light_theme_sets_every_colour_of_the_text_and_panels() -> None:
    css = CSS.read_text()
    light = css[css.index(THEMES["light"]) :]
    named = set(re.findall(r"--([a-z-]+):", light[: light.index("}")]))
    assert {*TEXT_COLOURS, "bg", "panel", "line", "card", "control", "hover", "map", "grid"} <= named
