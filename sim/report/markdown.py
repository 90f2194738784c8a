"""A :class:`~sim.report.page.Page` as GitHub-flavoured Markdown.

Every piece of text is escaped, because GitHub renders inline HTML and Markdown syntax alike:
``<``, ``>`` and ``&`` become entities (so no tag a scenario's text holds is ever a tag), and
the characters that start emphasis, links, code, tables or headings are backslash-escaped
(``|`` in particular, which would split a table cell).  Text is one line: a description's
line breaks become spaces, so it cannot start a heading or a list of its own, and a leading
``-``, ``+`` or ``1.`` followed by a space is escaped too.  A
:class:`~sim.report.page.Code` span is written as code only when its text has no backtick,
``|``, ``<``, ``>`` or ``&``; otherwise as escaped plain text -- the output never holds a raw
``<`` from user text, not even inside a code span.
"""

from __future__ import annotations

import re

from sim.report.page import Code, FigureBlock, Heading, Inline, Items, Mark, Page, Paragraph, Table, Text

__all__ = ["escape_markdown", "render_markdown"]

_SYNTAX = re.compile(r"([\\`*_{}\[\]#|~!])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])(?=\s|$)")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_UNSAFE_IN_CODE = frozenset("`|<>&\\")


def escape_markdown(text: str) -> str:
    """``text`` as Markdown that renders as exactly that text, on one line."""
    flat = re.sub(r"\s+", " ", text)
    escaped = _SYNTAX.sub(r"\\\1", flat)
    escaped = "".join(_ENTITIES.get(char, char) for char in escaped)
    start = _LINE_START.match(escaped)
    if start is None:
        return escaped
    token = start.group(2)  # '-', '+', '=' or '1.' would start a list or a heading: escape its punctuation
    return f"{escaped[: start.start(2)]}{token[:-1]}\\{token[-1]}{escaped[start.end(2) :]}"


def _inline(part: Inline) -> str:
    if isinstance(part, str):
        return escape_markdown(part)
    if isinstance(part, Code):
        flat = " ".join(part.text.split())
        return f"`{flat}`" if flat and not (_UNSAFE_IN_CODE & set(flat)) else escape_markdown(part.text)
    if isinstance(part, Mark):
        return f"**{escape_markdown(part.text)}**"
    target = f"{part.target}.md" if part.page else part.target
    return f"[{escape_markdown(part.text)}]({_url(target)})"


def _url(target: str) -> str:
    """A link target: ours are relative file names; anything else is percent-encoded."""
    return "".join(char if char.isalnum() or char in "-._/" else f"%{ord(char):02X}" for char in target)


def _text(parts: Text) -> str:
    return "".join(_inline(part) for part in parts)


def _table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(escape_markdown(cell) for cell in table.header) + " |"]
    lines.append("|" + "|".join("---:" if numeric else "---" for numeric in table.numeric) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_text(cell) for cell in row) + " |")
    return lines


def render_markdown(page: Page) -> str:
    """The page as Markdown text (ends with one newline)."""
    chunks: list[str] = [f"# {escape_markdown(page.title)}"]
    for block in page.blocks:
        if isinstance(block, Heading):
            chunks.append(f"{'#' * block.level} {escape_markdown(block.text)}")
        elif isinstance(block, Paragraph):
            chunks.append(_text(block.parts))
        elif isinstance(block, Items):
            chunks.append("\n".join(f"- {_text(item)}" for item in block.items))
        elif isinstance(block, Table):
            chunks.append("\n".join(_table(block)))
        elif isinstance(block, FigureBlock):
            figure = block.figure
            chunks.append(f"![{escape_markdown(figure.title)}]({_url(block.file)})")
            if figure.caption.strip():
                chunks.append(f"*{escape_markdown(figure.caption)}*")
    chunks.append("---")
    chunks.append(_text(page.footer))
    return "\n\n".join(chunks) + "\n"
