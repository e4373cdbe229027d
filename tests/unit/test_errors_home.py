"""Every exception mldr raises is declared in `mldr.errors`: one tree a reader finds in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import mldr.errors

LIBRARY = Path(mldr.errors.__file__).parent
#: The sandbox plays AWS's servers: its exceptions become HTTP answers and never reach a caller.
#: Likewise the dashboard's 403 (a FastAPI HTTPException, which mldr.errors cannot import in the
#: light install): FastAPI turns it into the page's answer.
OUTSIDE_THE_TREE = ("sandbox/", "airflow/dashboard/access.py")


def exception_classes(path: Path) -> list[str]:
    tree_names = {
        name
        for name, value in vars(mldr.errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {
            b.id if isinstance(b, ast.Name) else b.attr
            for b in node.bases
            if isinstance(b, ast.Name | ast.Attribute)
        }
        if bases & tree_names or any(b.endswith(("Error", "Exception")) for b in bases):
            found.append(node.name)
    return found


def test_every_exception_class_is_declared_in_errors_py() -> None:
    stray = [
        f"{rel}:{name}"
        for path in sorted(LIBRARY.rglob("*.py"))
        if path.name != "errors.py" or path.parent != LIBRARY
        for rel in [path.relative_to(LIBRARY).as_posix()]
        if not rel.startswith(OUTSIDE_THE_TREE)
        for name in exception_classes(path)
    ]
    assert sorted(stray) == [], "declare these in mldr/errors.py"


def test_the_check_finds_an_exception_declared_elsewhere(tmp_path: Path) -> None:
    module = tmp_path / "stray.py"
    module.write_text(
        "from mldr.errors import LeaseHeld\n\nclass Busy(LeaseHeld):\n    pass\n\nclass Plain:\n    pass\n"
    )
    assert exception_classes(module) == ["Busy"]
