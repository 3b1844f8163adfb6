"""Entry point of the `xec` command: a click group whose verbs are thin shells over library calls.

Each verb lives in its own module of this package and is listed once in COMMANDS below; a test
checks that every listed verb imports and shows its help.
"""

from __future__ import annotations

import importlib

import click

# verb -> "module:attribute" inside this package. One line per verb, kept sorted by workflow.
COMMANDS: dict[str, str] = {
    "geometry": "geometry_cmd:geometry",
    "simulate": "simulate_cmd:simulate_command",
    "reco": "reco_cmd:reco",
    "schemes": "schemes_cmd:schemes",
    "ingest": "ingest_cmd:ingest_command",
    "inspect": "inspect_cmd:inspect_command",
    "renormalize": "renormalize_cmd:renormalize_command",
    "repair": "repair_cmd:repair_command",
    "reweight": "reweight_cmd:reweight_command",
    "config": "config_cmd:config",
    "train": "train_cmd:train",
    "submit": "submit_cmd:submit",
    "validate": "validate_cmd:validate",
    "plots": "plots_cmd:plots",
    "display": "display_cmd:display",
    "export": "export_cmd:export",
    "infer": "infer_cmd:infer",
    "analyze": "analyze_cmd:analyze",
    "bench": "bench_cmd:bench",
    "demo": "demo_cmd:demo",
}


class LazyGroup(click.Group):
    """Imports a verb's module only when that verb runs, so `xec --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xec")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show other libraries' messages that xec hides as harmless.")  # fmt: skip
def main(verbose: bool) -> None:
    """xec: MEG II LXe detector data pipeline and training stack."""
    if not verbose:
        from .quiet import hide_harmless

        hide_harmless()


if __name__ == "__main__":
    main()
