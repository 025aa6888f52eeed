"""The folders are one installed package, onestop (README: Layout): no module loads under
its bare folder name, and nothing below streams/ loads Faust."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FOLDERS = ("models", "common", "consumers", "alerts", "streams")


def modules(*folders: str) -> list[str]:
    """The importable modules of the folders, by their installed names. Left out: alembic
    loads the migrations from their files, and __main__ runs the command when imported."""
    names = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or parts[-1] == "__main__":
                continue
            names.append(".".join(("onestop", *parts)).removesuffix(".__init__"))
    return names


def python(code: str) -> str:
    """Run code in a fresh interpreter from the repository root, which is then on sys.path
    as it is under `python -m pytest`: the place a bare `import models` would work."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("names", [
    ["onestop.consumers.report"],
    modules("models", "common", "consumers", "alerts"),
], ids=["the report", "every module below streams"])
def test_below_streams_nothing_loads_faust(names):
    assert python(f"import sys, {', '.join(names)}; print('faust' in sys.modules)") == "False"


def test_no_module_loads_under_its_bare_folder_name():
    bare = python(f"import sys, {', '.join(modules(*FOLDERS))}; "
                  f"print(sorted(set({FOLDERS}) & {{name.split('.')[0] for name in sys.modules}}))")
    assert bare == "[]"
    # Nor in this process, where every test module has been imported by now.
    assert not set(FOLDERS) & {name.split(".")[0] for name in sys.modules}


def test_the_wheel_holds_the_onestop_package_only(tmp_path):
    """Built from a copy: setuptools builds in the source tree, whose leftovers of an
    earlier build would go into the wheel."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(tmp_path),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"onestop"}
    sources = {f"onestop/{path.relative_to(ROOT).as_posix()}" for folder in FOLDERS
               for path in (ROOT / folder).rglob("*") if path.is_file()
               and "__pycache__" not in path.parts}
    assert sources <= names  # every module and data file, under onestop/
