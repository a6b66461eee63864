"""The package's layers: imports run one way, and only the pytest layer imports pytest."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_ckpt"
# Each layer may import those ranked below it (and the top-level errors, models).
RANK = {"framework": 1, "search": 2, "checks": 3, "report": 4, "inspect": 5, "golden": 6, "plugin": 7}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pytest_ckpt" and parts[1] in RANK else None


def test_layers_import_only_layers_below_them():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0]
        if here not in RANK:
            continue
        for module in imports(path):
            there = layer_of(module)
            if there is not None and there != here and RANK[there] >= RANK[here]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong


def test_only_the_plugin_layer_imports_pytest():
    wrong = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if p.relative_to(PACKAGE).parts[0] != "plugin"
             and any(m == "pytest" or m.startswith(("pytest.", "_pytest")) for m in imports(p))]
    assert not wrong


def test_no_function_is_over_60_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long
