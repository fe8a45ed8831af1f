"""The docs keep up with the code: every FLEET_* setting is in the settings table of docs/operations.md, and every
link between the docs' own files and headings leads somewhere (as datasette's test_docs.py holds its docs to its
code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.platform.settings import ENV_PREFIX, GROUP_OF_FIELD, SCRIPT_ONLY_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
DOCS = [
    ROOT / "README.md",
    ROOT / "client" / "README.md",
    ROOT / "benchmarks" / "NOTES.md",
    *sorted(ROOT.glob("docs/*.md")),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def settings_table(readme: str) -> str:
    """The rows of the settings table (| group | variable | default | meaning |)."""
    return "\n".join(line for line in readme.splitlines() if line.startswith("| ") and "`FLEET_" in line)


def test_every_setting_is_in_the_settings_table() -> None:
    table = settings_table(OPERATIONS.read_text())
    variables = [f"{ENV_PREFIX}{field.upper()}" for field in sorted(GROUP_OF_FIELD)]
    assert [variable for variable in variables if f"`{variable}`" not in table] == []


def test_the_script_only_variables_are_named_beside_it() -> None:
    text = OPERATIONS.read_text()
    assert [variable for variable in sorted(SCRIPT_ONLY_VARIABLES) if f"`{variable}`" not in text] == []


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_links_between_the_docs_lead_somewhere(doc: Path) -> None:
    dead = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not followed here
            continue
        path, _, fragment = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            dead.append(target)
        elif fragment and linked.suffix == ".md":
            headings = [anchor(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.M)]
            if fragment not in headings:
                dead.append(target)
    assert dead == []
