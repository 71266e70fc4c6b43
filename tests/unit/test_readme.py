"""The README is the manual: its tool reference must be what the server registers."""

from __future__ import annotations

from pathlib import Path

from cachebash.interface import tool_docs

README = Path(__file__).resolve().parents[2] / "README.md"


def test_tool_reference_matches_the_tools() -> None:
    text = README.read_text()
    assert tool_docs.render() in text, "regenerate with: .venv/bin/cachebash docs --write README.md"


def test_readme_documents_both_commands() -> None:
    text = README.read_text()
    assert "make serve" in text and "make test" in text
