"""The import rules of the layout (docs/DESIGN.md, "Layout"), read from the code with ast:
each rule broken is reported with the file, the line and the import."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.services import REPO

PRODUCT = ("common", "tasks", "workers", "ferry")
# Which packages of common/ each may import (besides itself and common.errors); None: any.
ALLOWED: dict[str, set[str] | None] = {
    "common.model": set(),
    "common.config": {"common.model"},
    "common.source": {"common.model", "common.config"},
    "common.store": {"common.model", "common.config"},
    "common.state": {"common.model", "common.config"},
    "common.warehouse": {"common.model", "common.config", "common.store"},  # (manifests on S3)
    "common.plan": {"common.model", "common.config", "common.source"},
    "common.recovery": {"common.model", "common.config", "common.state", "common.store"},
    "common.verify": None,
    "common.reconcile": {"common.model", "common.config", "common.source", "common.plan", "common.store",
                         "common.verify"},
}


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import, relative ones resolved; `from a import b` gives
    a.b as well as a (b may be a module)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: -node.level]
                base = ".".join(pkg + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def _package(name: str) -> str | None:
    """The common/ package a dotted name is in (common.model, ...), or None."""
    parts = name.split(".")
    if parts[0] != "common" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def violations(root: Path) -> list[str]:
    out = []
    files = [p for top in PRODUCT for p in sorted((root / top).rglob("*.py"))]
    files += [p for p in [root / "celeryconfig.py"] if p.exists()]
    for path in files:
        module = _module(path, root)
        where = path.relative_to(root)
        tree = ast.parse(path.read_text(), str(path))
        own = _package(module)
        in_state = module.startswith("common.state")
        seen = set()
        for line, name in _imports(tree, module):
            top = name.split(".")[0]
            if top == "redis" and not in_state and (line, "redis") not in seen:
                seen.add((line, "redis"))
                out.append(f"{where}:{line}: imports {name}: only common/state talks to Redis")
            if module.startswith("common") and top in ("tasks", "workers", "ferry"):
                out.append(f"{where}:{line}: imports {name}: common never imports {top}")
            target = _package(name)
            if own is None or target is None or target == own or name in ("common.errors",):
                continue
            allowed = ALLOWED.get(own, None)
            if allowed is not None and target not in allowed and target != "common.errors":
                out.append(f"{where}:{line}: imports {name}: {own} may import only "
                           f"{', '.join(sorted(allowed)) or 'common.errors'}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "register_script" and not in_state:
                out.append(f"{where}:{node.lineno}: register_script: Lua scripts are registered in "
                           f"common/state/scripts.py only")
            # A table state's Redis client, read from outside the state package.
            if (isinstance(node, ast.Attribute) and node.attr == "r" and not in_state
                    and ((isinstance(node.value, ast.Name) and node.value.id in ("state", "st"))
                         or (isinstance(node.value, ast.Attribute) and node.value.attr == "state"))):
                out.append(f"{where}:{node.lineno}: reads the Redis client of a table state: "
                           f"go through a method of common/state")
    return sorted(set(out))


def test_the_code_keeps_the_import_rules() -> None:
    found = violations(REPO)
    assert not found, "import rules broken:\n" + "\n".join(found)


def test_each_rule_broken_is_named_with_file_line_and_import(tmp_path: Path) -> None:
    """The checker itself: a tree that breaks every rule once is reported rule by rule."""
    files = {
        "common/__init__.py": "",
        "common/errors.py": "",
        "common/model/__init__.py": "",
        "common/model/types.py": "from common.config import pipeline\n",
        "common/config/pipeline.py": "from common.model import naming\nfrom common.errors import ConfigError\n",
        "common/source/reads.py": "from common.store.s3 import Store\n",
        "common/warehouse/load.py": "from common.store import s3\nfrom ..state import table\n",
        "common/plan/ranges.py": "from tasks.context import lock_ttl_s\n",
        "tasks/load.py": "import redis\n\ndef f(ctx):\n    return ctx.state.r.get('x')\n",
        "ferry/x.py": "def g(c):\n    return c.register_script('return 1')\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for top in ("workers",):
        (tmp_path / top).mkdir()
    found = violations(tmp_path)
    assert found == sorted([
        "common/model/types.py:1: imports common.config: common.model may import only common.errors",
        "common/model/types.py:1: imports common.config.pipeline: common.model may import only common.errors",
        "common/plan/ranges.py:1: imports tasks.context: common never imports tasks",
        "common/plan/ranges.py:1: imports tasks.context.lock_ttl_s: common never imports tasks",
        "common/source/reads.py:1: imports common.store.s3: common.source may import only common.config, common.model",
        "common/source/reads.py:1: imports common.store.s3.Store: common.source may import only common.config, "
        "common.model",
        "common/warehouse/load.py:2: imports common.state: common.warehouse may import only common.config, "
        "common.model, common.store",
        "common/warehouse/load.py:2: imports common.state.table: common.warehouse may import only common.config, "
        "common.model, common.store",
        "ferry/x.py:2: register_script: Lua scripts are registered in common/state/scripts.py only",
        "tasks/load.py:1: imports redis: only common/state talks to Redis",
        "tasks/load.py:4: reads the Redis client of a table state: go through a method of common/state",
    ]), "\n".join(found)
