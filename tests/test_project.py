"""Project habits: the CLI verb table, README set-up commands and CI script stay in sync."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from xec_cli.main import COMMANDS, main

from .conftest import REPO


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_verb_imports_and_has_help(verb):
    res = CliRunner().invoke(main, [verb, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output and len(res.output.splitlines()) > 3


def test_top_level_help_lists_every_verb():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    for verb in COMMANDS:
        assert verb in res.output


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    demo, tests = _readme_commands()
    assert demo.endswith("xec demo") and "torch==2.13.0" in demo
    assert "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    install_and_test = tests.split("&& ", 2)[2]  # after creating and activating the venv
    assert install_and_test.replace("pip install", "pip install -q") in ci


def test_no_machine_paths_in_project_files():
    bad = re.compile(r"/work/|/root/|/home/\w+")
    offenders = []
    for path in REPO.rglob("*"):
        parts = set(path.relative_to(REPO).parts)
        if parts & {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}:
            continue
        if path.is_file() and path.suffix in {".py", ".md", ".toml", ".yaml", ".yml", ".json"}:
            if path.name == "test_project.py":
                continue
            text = path.read_text(errors="ignore")
            if bad.search(text):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_ruff_lint_and_format_clean():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    for args in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
        res = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_a_built_wheel_holds_every_module_and_data_file(tmp_path):
    """A non-editable install (cluster nodes) gets every package: the pyproject list matches
    the package folders, and a wheel built from the tracked files holds all of them."""
    import subprocess
    import sys
    import zipfile

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    folders = {
        ".".join(p.parent.relative_to(REPO).parts).replace("cli", "xec_cli", 1)
        for top in ("xecdata", "xecmodel", "xectrain", "cli")
        for p in (REPO / top).rglob("__init__.py")
    }
    assert sorted(listed) == sorted(folders)

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    src = tmp_path / "src"
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        n.replace("cli/", "xec_cli/", 1) if n.startswith("cli/") else n
        for n in tracked
        if n.split("/")[0] in ("xecdata", "xecmodel", "xectrain", "cli")
    }
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"
