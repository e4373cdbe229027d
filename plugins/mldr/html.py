"""HTML for people, in one place: a Jinja2 environment over `mldr/templates/` that escapes
every value it renders.

Each page mldr writes - the stored check and drill reports, the dashboard - is a template
there. The hand-drawn SVG plots stay Python (they are geometry, not markup): their code
escapes its text with `esc` and hands the finished SVG to a template as `Markup`.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["Markup", "esc", "generated_at", "prepare", "render"]

_environment_lock = threading.Lock()


def environment() -> Environment:
    with _environment_lock:  # `prepare` may be building it on another thread
        return _environment()


@cache
def _environment() -> Environment:
    # Imported here: jinja2 and a template's compilation cost a check ~0.3 s of CPU, which
    # `prepare` moves off the critical path (a check renders its page only at the end).
    from jinja2 import Environment, PackageLoader, StrictUndefined

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


def prepare(*templates: str) -> None:
    """Import Jinja2 and compile `templates` on a background thread, while the caller does its
    I/O-bound work (a verification lists two buckets), so the render at the end is quick."""

    def load() -> None:
        env = environment()
        for name in templates:
            env.get_template(name)  # compiled once, cached by the environment

    threading.Thread(target=load, name="html-prepare", daemon=True).start()


def render(template: str, **context: Any) -> str:
    """The page `template` (a file under mldr/templates/) filled with `context`."""
    return environment().get_template(template).render(**context)


def esc(value: object) -> Markup:
    """`value` escaped for HTML text or an attribute value; None is empty."""
    return escape("" if value is None else value)


def generated_at() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
