"""Entry point of the `xec` command: a click group whose verbs are thin shells over library calls.

Each verb lives in its own module of this package and is listed once in COMMANDS below; a test
checks that every listed verb imports and shows its help. Errors end here in one place: a refused
request (any `XecError`, or a click usage error) prints one `Error: ...` line and exits non-zero;
anything unexpected prints a one-line summary too, and its traceback only under `xec -v`.
"""

from __future__ import annotations

import importlib
import traceback

import click

from xecdata.errors import XecError, one_line

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

    def invoke(self, ctx: click.Context) -> object:
        """Run the verb; turn whatever it raises into one `Error:` line (see `error_message`)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as exc:
            text = exc.format_message()
            if "\n" not in text:
                raise
            raise click.ClickException(one_line(text)) from exc
        except Exception as exc:
            if ctx.params.get("verbose"):
                traceback.print_exc()
            raise click.ClickException(error_message(exc)) from exc


def error_message(exc: Exception) -> str:
    """The one line a user sees for `exc`: the message of a refused request (it names the thing
    and the fix), an OS error with its file, else the bare failure and how to see more."""
    if isinstance(exc, XecError):
        return one_line(str(exc))
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}; check the path and its permissions"
    text = one_line(str(exc)) or "(no message)"
    return f"unexpected {type(exc).__name__}: {text}. Re-run with `xec -v ...` for the traceback"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xec")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show other libraries' messages that xec hides as harmless, and "
                   "the traceback of a failed command.")  # fmt: skip
def main(verbose: bool) -> None:
    """xec: MEG II LXe detector data pipeline and training stack."""
    if not verbose:
        from .quiet import hide_harmless

        hide_harmless()


if __name__ == "__main__":
    main()
