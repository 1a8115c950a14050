"""Each step's page in docs/ documents every option its command has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesep.cli.main import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = {
    "export": "export.md",
    "convert": "convert.md",
    "quantize": "quantize.md",
    "validate": "validate.md",
    "bench": "validate.md",
    "run": "run.md",
    "farm": "farm.md",
}


@pytest.mark.parametrize("command", sorted(PAGES))
def test_page_lists_every_option(command, capsys):
    assert main([command, "--help"]) == 0
    options = set(re.findall(r"(--[a-z][a-z0-9-]*)", capsys.readouterr().out)) - {"--help"}
    page = (DOCS / PAGES[command]).read_text()
    missing = sorted(option for option in options if option not in page)
    assert not missing, f"docs/{PAGES[command]} does not mention {missing}"
