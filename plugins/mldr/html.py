"""HTML for people, in one place: a Jinja2 environment over `mldr/templates/` that escapes
every value it renders.

Each page mldr writes - the stored check and drill reports, the dashboard - is a template
there. The hand-drawn SVG plots stay Python (they are geometry, not markup): their code
escapes its text with `esc` and hands the finished SVG to a template as `Markup`.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

__all__ = ["Markup", "esc", "generated_at", "render"]


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mldr", "templates"),
        autoescape=True,  # every page is HTML: no value reaches it unescaped unless it is Markup
        undefined=StrictUndefined,  # a misspelt name fails the render instead of showing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_blank_none,  # a value not recorded shows as nothing, as `esc` shows it
    )
    env.filters["extract"] = _extract
    return env


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def _extract(key: str, row: Any) -> Any:
    """`row[key]`, or None when the row has no such key (an older stored document)."""
    return row.get(key) if isinstance(row, dict) else row[key]


def render(template: str, **context: Any) -> str:
    """The page `template` (a file under mldr/templates/) filled with `context`."""
    return environment().get_template(template).render(**context)


def esc(value: object) -> Markup:
    """`value` escaped for HTML text or an attribute value; None is empty."""
    return escape("" if value is None else value)


def generated_at() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
