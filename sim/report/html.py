"""A :class:`~sim.report.page.Page` as one self-contained HTML file.

Self-contained: the styles are inline, every figure is an ``<img>`` whose source is a
``data:image/svg+xml;base64,`` URI (an SVG shown through ``<img>`` cannot run script or load
anything), the fonts are the reader's own, and the page has no script and no external URL of
any kind.  A Content-Security-Policy meta tag says the same to the browser (nothing may load
except inline styles and data-URI images), so even a mistake here could not reach the network.

Every piece of text -- scenario names, descriptions, variant names, expectations, captions,
alt texts -- goes through :func:`html.escape` with quotes, so a scenario called
``<script>alert(1)</script>`` is shown as those characters.
"""

from __future__ import annotations

import base64
import html

from sim.report.page import Code, FigureBlock, Heading, Inline, Items, Mark, Page, Paragraph, Table, Text

__all__ = ["CONTENT_SECURITY_POLICY", "render_html"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_STYLE = """
body { margin: 0; background: #fff; color: #1b1f23;
  font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.8rem; margin: 0 0 0.75rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 0.4rem; }
code { font: 0.9em/1.4 "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  background: #f3f4f6; padding: 0.05em 0.3em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
figure { margin: 0.5rem 0 1.5rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.9rem; margin-top: 0.3rem; }
.good { color: #116329; font-weight: 600; }
.bad { color: #a40e26; font-weight: 600; }
.strong { font-weight: 600; }
footer { margin-top: 2.5rem; padding-top: 0.5rem; border-top: 1px solid #d0d7de; color: #57606a; font-size: 0.85rem;
  overflow-wrap: anywhere; }
""".strip()


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _inline(part: Inline) -> str:
    if isinstance(part, str):
        return _escape(part)
    if isinstance(part, Code):
        return f"<code>{_escape(part.text)}</code>"
    if isinstance(part, Mark):
        return f'<span class="{part.tone}">{_escape(part.text)}</span>'
    target = f"{part.target}.html" if part.page else part.target
    return f'<a href="{_escape(target)}">{_escape(part.text)}</a>'


def _text(parts: Text) -> str:
    return "".join(_inline(part) for part in parts)


def _table(table: Table) -> str:
    head = "".join(f"<th>{_escape(cell)}</th>" for cell in table.header)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{_text(cell)}</td>' if numeric else f"<td>{_text(cell)}</td>"
            for cell, numeric in zip(row, table.numeric, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _figure(block: FigureBlock) -> str:
    data = base64.b64encode(block.figure.svg.encode("utf-8")).decode("ascii")
    figure = block.figure
    caption = f"\n<figcaption>{_escape(figure.caption)}</figcaption>" if figure.caption.strip() else ""
    return f'<figure>\n<img src="data:image/svg+xml;base64,{data}" alt="{_escape(figure.title)}">{caption}\n</figure>'


def _block(block: Heading | Paragraph | Items | Table | FigureBlock) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 6)
        return f"<h{level}>{_escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_text(block.parts)}</p>"
    if isinstance(block, Items):
        return "<ul>\n" + "\n".join(f"<li>{_text(item)}</li>" for item in block.items) + "\n</ul>"
    if isinstance(block, Table):
        return _table(block)
    return _figure(block)


def render_html(page: Page) -> str:
    """The page as a complete HTML5 document (ends with one newline)."""
    body = "\n".join(_block(block) for block in page.blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_escape(CONTENT_SECURITY_POLICY)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_escape(page.title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_escape(page.title)}</h1>\n{body}\n<footer>{_text(page.footer)}</footer>\n</main>\n</body>\n</html>\n"
    )
