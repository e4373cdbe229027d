"""The optional parts of mldr and how a command asks for one.

`pip install mldr` is the break-glass CLI alone (status, failover, failback, history, verify,
lag). The rest is in extras (pyproject.toml's `[project.optional-dependencies]`); a command that
needs one says which, instead of failing on an import deep inside the library.
"""

from __future__ import annotations

import importlib.util

from mldr.errors import MissingExtra

#: What each extra installs that mldr imports, by top-level module name (checked without importing).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "airflow": ("airflow",),
    "sandbox": ("boto3", "moto", "werkzeug", "fastapi", "uvicorn", "sklearn"),
    "infra": ("pulumi", "pulumi_aws"),
    "example": ("sklearn",),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def install_hint(extra: str) -> str:
    return f"pip install 'mldr[{extra}]' (or `make install` in a checkout)"


def require_extra(extra: str, *, needed_by: str) -> None:
    """Raise `MissingExtra` naming the extra when any of its modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(
            f"{needed_by} needs the {extra} extra (missing: {', '.join(missing)}): {install_hint(extra)}"
        )
