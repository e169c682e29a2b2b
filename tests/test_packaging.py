"""What an installed ferry holds (the Docker image runs `pip install .`, not the checkout):
every module and every Lua file, the fragments the scripts include among them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.services import REPO


def test_a_built_package_holds_every_module_and_lua_file_and_its_scripts_load(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                          "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(tmp_path / "lib")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    built = tmp_path / "lib"
    wanted = [p.relative_to(REPO) for top in ("common", "tasks", "workers", "ferry")
              for p in (REPO / top).rglob("*") if p.suffix in (".py", ".lua") and "__pycache__" not in p.parts]
    missing = [str(p) for p in wanted if not (built / p).exists()]
    assert not missing, f"not in the built package: {missing}"
    # Its scripts load from the built tree alone (every --#include found), not from the checkout.
    check = ("import common.state.scripts as s, sys; assert str(s.__file__).startswith(sys.argv[1]), s.__file__; "
             "print(len(s.TEXTS))")
    run = subprocess.run([sys.executable, "-c", check, str(built)], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(built)), timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout) == len(list((REPO / "common/state/lua").glob("*.lua")))
