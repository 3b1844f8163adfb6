"""The documentation stays true to the command: every `xec` command line in the user guide's
shell blocks names an existing verb (and subcommand) and only options that verb has; the README
links every page of docs/."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from xec_cli.main import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
KINDS = ("regressor", "mae", "inpainter", "jupyter", "ingest")  # xec submit: options stop there


def _command_lines(text: str) -> list[str]:
    """`xec ...` lines of the ```bash blocks, continuation lines joined, env settings dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line)
            if line.startswith("xec "):
                lines.append(line.replace("[", "").replace("]", ""))
    return lines


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command a word list runs (descending into groups) and the words after it."""
    ctx = click.Context(main)
    cmd: click.Command = main
    while isinstance(cmd, click.Group) and words:
        sub = cmd.get_command(ctx, words[0])
        if sub is None:
            sub = cmd.get_command(ctx, "run")  # `xec reco INPUT`: the group's default
            assert sub is not None, f"no subcommand {words[0]!r}"
            cmd = sub
            break
        cmd, words = sub, words[1:]
    return cmd, words


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}


def test_every_command_line_of_the_user_guide_is_valid() -> None:
    lines = _command_lines((DOCS / "user-guide.md").read_text())
    assert len(lines) >= 20
    for line in lines:
        cmd, words = _resolve(shlex.split(line)[1:])
        known = _options(cmd)
        for word in words:
            if cmd.name == "submit" and word in KINDS:
                break  # what follows goes to `xec train` / `xec ingest`
            if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
                assert word.split("=")[0] in known, f"{line}: {cmd.name} has no option {word}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_readme_links_every_doc_page(page: str) -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert f"(docs/{page})" in readme
