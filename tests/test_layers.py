"""The house's layers, checked on the source: the domain knows no HTTP, and the authorization server
(``provisio.oauth``) knows no screens: the console calls it, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "provisio"


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "domain",
            ("fastapi", "starlette", "provisio.scim", "provisio.console", "provisio.oauth", "provisio.api"),
        ),
        ("oauth", ("provisio.console",)),
    ],
)
def test_a_layer_imports_nothing_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    def above(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in forbidden)

    offences = {module: sorted(filter(above, names)) for module, names in _imports(package).items()}
    assert not {module: names for module, names in offences.items() if names}
