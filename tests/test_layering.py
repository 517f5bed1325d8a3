"""The import arrows of ARCHITECTURE.md, enforced by parsing every module's imports."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"engine", "grammar", "kernels", "server", "gramserve"}
ALLOWED = {
    "gramserve": set(),
    "server": {"engine", "grammar"},
    "engine": {"kernels", "grammar"},
    "grammar": set(),
    "kernels": set(),
}
# third-party packages a layer must never import
FORBIDDEN_THIRD_PARTY = {
    "grammar": {"torch", "triton"},
    "kernels": {"transformers", "fastapi", "pydantic"},
    "engine": {"fastapi", "pydantic", "starlette", "uvicorn"},
    "gramserve": {"torch", "fastapi", "triton", "transformers"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules():
    for pkg in sorted(ALLOWED):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield pkg, path


@pytest.mark.parametrize("pkg,path", list(_modules()), ids=lambda x: str(x).replace(str(ROOT) + "/", ""))
def test_import_arrows(pkg: str, path: Path) -> None:
    imported = _imports(path)
    ours = (imported & OURS) - {pkg}
    bad = ours - ALLOWED[pkg]
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: {pkg}/ may import only {sorted(ALLOWED[pkg]) or 'nothing of ours'}"
    banned = imported & FORBIDDEN_THIRD_PARTY.get(pkg, set())
    assert not banned, f"{path.relative_to(ROOT)} imports {sorted(banned)}, which {pkg}/ must never import"


def test_checker_catches_a_bad_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import engine.llm\nfrom server import app\n")
    assert {"engine", "server"} <= _imports(bad)
