"""MkDocs hook: two things Python-Markdown renders otherwise than the pages mean.

- Sphinx roles in docstrings (``:class:`Study```, ``:func:`xi_gsnr```), which mkdocstrings does
  not interpret, would show ``:class:`` before the name in the API reference: the role is
  dropped and the name stays code.
- A pipe inside code in a table cell is written ``\\|`` (so that GitHub, which reads the same
  Markdown, does not split the cell there); Python-Markdown keeps the backslash inside code:
  it is dropped.
"""
from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const|ref):<code>~?")
_CODE = re.compile(r"<code>([^<]*\\\|[^<]*)</code>")


def on_page_content(html, page, config, files):
    html = _ROLE.sub("<code>", html)
    return _CODE.sub(lambda m: "<code>" + m.group(1).replace("\\|", "|") + "</code>", html)
