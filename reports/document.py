"""A tiny document model: the report is built once as data, then rendered to HTML and Markdown.

Every string in the model is plain text — possibly user-provided (study names, config values,
failure reasons) — and the renderers escape all of it. Nothing in the model is markup.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Block", "Bullets", "Code", "Document", "Figure", "Paragraph", "Section", "Table"]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """An unordered list of plain-text items."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    """Preformatted text (a command line, a file list)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``caption`` may be empty."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG beside the report (``file`` is a bare file name) with its caption and alt text."""

    file: str
    caption: str
    alt: str


Block = Paragraph | Bullets | Code | Table | Figure


@dataclass(frozen=True)
class Section:
    """A titled section; ``anchor`` is a fixed identifier chosen by the report, never user text."""

    title: str
    anchor: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """The whole report."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
