"""Reading and completing a model card's YAML header (the part the Hub reads: license, tags, ...)."""

from __future__ import annotations

import re
from pathlib import Path

_HEADER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


def card_license(card: Path) -> str | None:
    """The `license:` of a README.md model card's YAML header, or None when the card or the field is missing."""
    if not card.is_file():
        return None
    header = _HEADER.match(card.read_text(encoding="utf-8"))
    found = re.search(r"^license:\s*(\S.*?)\s*$", header.group(1), re.MULTILINE) if header else None
    return found.group(1).strip("'\"") if found else None


def with_license(text: str, license_name: str) -> str:
    """`text` (a card, possibly empty) with `license: license_name` in its YAML header."""
    header = _HEADER.match(text)
    if header is None:
        return f"---\nlicense: {license_name}\n---\n{text}"
    body = re.sub(r"^license:.*$\n?", "", header.group(1), flags=re.MULTILINE).rstrip("\n")
    return f"---\n{body}\nlicense: {license_name}\n---\n" + text[header.end():]
