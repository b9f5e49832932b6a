"""Render a ``Document`` as a static HTML page (no scripts, no network) and as Markdown.

All text is escaped here and only here: ``html.escape`` for HTML; for Markdown, the characters
that Markdown or inline HTML would interpret are backslash-escaped or turned into entities.
"""

from __future__ import annotations

import re
from html import escape

from reports.document import Block, Bullets, Code, Document, Figure, Paragraph, Section, Table

__all__ = ["md_escape", "render_html", "render_markdown"]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #555; margin-top: 0; }
nav ul { columns: 2; } table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } caption { caption-side: top; text-align: left; color: #444; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 0.92rem; } pre { background: #f6f6f6; padding: 0.6rem;
       overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
"""


def render_html(doc: Document) -> str:
    """The complete HTML page for ``doc``."""
    toc = "".join(
        f'<li><a href="#{escape(s.anchor)}">{escape(s.title)}</a></li>' for s in doc.sections
    )
    body = "\n".join(_html_section(s) for s in doc.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<h1>{escape(doc.title)}</h1>\n<p class="subtitle">{escape(doc.subtitle)}</p>\n'
        f"<nav><ul>{toc}</ul></nav>\n{body}\n</body>\n</html>\n"
    )


def _html_section(section: Section) -> str:
    blocks = "\n".join(_html_block(b) for b in section.blocks)
    return (
        f'<section id="{escape(section.anchor)}">\n<h2>{escape(section.title)}</h2>\n'
        f"{blocks}\n</section>"
    )


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Code):
        return f"<pre>{escape(block.text)}</pre>"
    if isinstance(block, Table):
        return _html_table(block)
    return (
        f'<figure><img src="{escape(block.file)}" alt="{escape(block.alt)}">'
        f"<figcaption>{escape(block.caption)}</figcaption></figure>"
    )


def _html_table(table: Table) -> str:
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LEADING = re.compile(r"^([#+-])(?=\s|$)")
_MD_NUMBERED = re.compile(r"^(\d+)([.)])(?=\s|$)")


def md_escape(text: str) -> str:
    """Escape text for Markdown: entities for ``& < >`` (no inline HTML), backslashes before
    emphasis, code, link, table and strike-through characters, and before a leading block marker.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))
    return _MD_NUMBERED.sub(r"\1\\\2", _MD_LEADING.sub(r"\\\1", text))


def render_markdown(doc: Document) -> str:
    """The report as Markdown (``summary.md``), figures linked by file name."""
    parts = [f"# {md_escape(doc.title)}", "", md_escape(doc.subtitle), ""]
    for section in doc.sections:
        parts += [f"## {md_escape(section.title)}", ""]
        for block in section.blocks:
            parts += [_md_block(block), ""]
    return "\n".join(parts).rstrip() + "\n"


def _md_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return md_escape(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {md_escape(i)}" for i in block.items)
    if isinstance(block, Code):
        longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}\n{block.text}\n{fence}"
    if isinstance(block, Table):
        return _md_table(block)
    assert isinstance(block, Figure)
    return f"![{md_escape(block.alt)}]({block.file})\n\n*{md_escape(block.caption)}*"


def _md_table(table: Table) -> str:
    lines = [f"*{md_escape(table.caption)}*", ""] if table.caption else []
    lines.append("| " + " | ".join(md_escape(h) for h in table.headers) + " |")
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)
