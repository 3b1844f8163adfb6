"""`xec geometry`: print the sensor table generated from the detector parameters."""

from __future__ import annotations

import csv
import json
import sys

import click

from xecdata.geometry import geometry_id, sensor_table_rows

COLUMNS = ("id", "face", "type", "x", "y", "z", "nx", "ny", "nz")


@click.command()
@click.option("--csv", "fmt", flag_value="csv", default=True, help="CSV table (default).")
@click.option("--json", "fmt", flag_value="json", help="JSON: geometry id and sensor records.")
def geometry(fmt: str) -> None:
    """Print every sensor: id, face, type, position (cm) and inward normal."""
    rows = sensor_table_rows()
    if fmt == "json":
        json.dump({"geometry_id": geometry_id(), "units": "cm", "sensors": rows}, sys.stdout)
        sys.stdout.write("\n")
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
