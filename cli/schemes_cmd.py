"""`xec schemes`: list the normalization schemes with their parameters and content hashes."""

from __future__ import annotations

import json
import sys

import click

from xecdata.schemes import PARAMETER_FIELDS, list_schemes, load_scheme_file

_HEADERS = {
    "npho_transform": "transform",
    "npho_scale": "npho_scale",
    "npho_scale2": "npho_scale2",
    "time_scale": "time_scale",
    "time_shift": "time_shift",
    "npho_sentinel": "npho_sent",
    "time_sentinel": "time_sent",
    "npho_threshold": "npho_thr",
}


def schemes_table() -> str:
    """Aligned text table: id, every parameter, and the first 12 hex digits of the hash."""
    header = ["id", *(_HEADERS[k] for k in PARAMETER_FIELDS), "hash"]
    rows = [
        [s.id, *(str(getattr(s, k)) for k in PARAMETER_FIELDS), s.hash[: len("sha256:") + 12]]
        for s in list_schemes()
    ]
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table)
    return "\n".join(line.rstrip() for line in lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON: every scheme's id, hash, parameters.")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Also load the scheme defined in this YAML/JSON file (repeatable).",
)
def schemes(as_json: bool, files: tuple[str, ...]) -> None:
    """List the normalization schemes (built-ins plus any --file) with parameters and hashes."""
    for path in files:
        load_scheme_file(path)
    if as_json:
        json.dump({"schemes": [s.to_dict() for s in list_schemes()]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    click.echo(schemes_table())
