"""`xec submit`: write (and, where sbatch exists, submit) a SLURM job that trains on N nodes x
G GPUs with torchrun, runs a Jupyter server on a GPU node, or ingests one big store with N nodes
(an array job of `xec ingest --part K/N`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click

KINDS = ("regressor", "mae", "inpainter", "jupyter", "ingest")


@click.command(
    "submit", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--partition", "-p", required=True, help="SLURM partition (e.g. an A100 or GH200 one)."
)
@click.option("--time", "time_", default="12:00:00", show_default=True, help="Wall-time limit.")
@click.option(
    "--nodes", default=1, show_default=True, help="Nodes (one torchrun each; ingest: parts)."
)
@click.option(
    "--gpus", "gpus", default=1, show_default=True, help="GPUs per node (ranks per node)."
)
@click.option(
    "--cpus-per-gpu", default=16, show_default=True, help="CPU cores per GPU (loader threads)."
)
@click.option("--mem", default=None, help="Memory per node (SLURM syntax, e.g. 200G).")
@click.option("--account", default=None, help="SLURM account.")
@click.option("--name", default=None, help="Job name (default: xec-KIND).")
@click.option(
    "--env",
    "env_x86",
    default=None,
    help="venv or conda environment for x86_64 nodes (default: the one running this).",
)
@click.option(
    "--env-arm", default=None, help="Environment for aarch64 (GH200) nodes (default: --env)."
)
@click.option("--port", default=8888, show_default=True, help="Jupyter port (kind jupyter).")
@click.option("-o", "--job-dir", type=click.Path(path_type=Path), default=Path("jobs"),
              show_default=True, help="Where the job file and its logs go.")  # fmt: skip
@click.option("--signal-before", default=300, show_default=True, type=click.IntRange(min=0),
              help="Training: SIGUSR1 this many seconds before the wall time; the ranks save "
                   "checkpoint_last and the job requeues itself to continue (0: off).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Write the job file and print it; do not submit.")
def submit(
    kind: str, train_args: tuple[str, ...], partition: str, time_: str, nodes: int, gpus: int,
    cpus_per_gpu: int, mem: str | None, account: str | None, name: str | None,
    env_x86: str | None, env_arm: str | None, port: int, job_dir: Path, signal_before: int,
    dry_run: bool,
) -> None:  # fmt: skip
    """Write JOB_DIR/<name>.sbatch for `xec train KIND TRAIN_ARGS...` (submit options come
    before KIND; everything after it goes to xec train, e.g. `xec submit -p gh --gpus 4
    regressor -c configs/regressor.yaml --store s.xec.zarr`) and submit it
    with sbatch. At submission, BATCH_SIZE, EPOCHS, LR, TASKS, RESUME_FROM, RUN_NAME and STORE
    in the environment override the written options (`BATCH_SIZE=512 sbatch JOB`). KIND
    jupyter starts a Jupyter server instead; its log prints the ssh tunnel command. KIND
    ingest writes an array job of --nodes tasks, each on a whole node without GPUs, running
    `xec ingest ARGS... --part K/N`; the last part to finish completes the store (`xec submit
    -p cpu --nodes 8 ingest /data/run*/ -o /scratch/big.xec.zarr`). A training job gets
    SIGUSR1 --signal-before seconds before its wall time, saves, and requeues itself; the
    requeued job continues the run (named <name>-<job id>) from its checkpoint_last."""
    from xectrain.cluster.slurm import Resources, ingest_job, jupyter_job, train_job

    if kind == "jupyter" and train_args:
        raise click.UsageError(
            f"kind jupyter takes no training options (got {' '.join(train_args)})"
        )
    if kind == "ingest":
        _check_ingest_args(train_args)
    job_dir.mkdir(parents=True, exist_ok=True)
    one_node = kind in ("jupyter", "ingest")
    r = Resources(name or f"xec-{kind}", partition, time_, 1 if one_node else nodes,
                  0 if kind == "ingest" else gpus, cpus_per_gpu, mem, account,
                  str(job_dir.resolve()), 0 if one_node else signal_before)  # fmt: skip
    env = env_x86 or sys.prefix
    workdir = str(Path.cwd())
    if kind == "jupyter":
        text = jupyter_job(r, port, env, env_arm, workdir)
    elif kind == "ingest":
        text = ingest_job(r, nodes, train_args, env, env_arm, workdir)
    else:
        text = train_job(r, kind, train_args, env, env_arm, workdir)
    path = job_dir / f"{r.name}.sbatch"
    path.write_text(text)
    path.chmod(0o755)
    if dry_run or shutil.which("sbatch") is None:
        click.echo(text if dry_run else "")
        click.echo(f"wrote {path}; submit with: sbatch {path}")
        return
    out = subprocess.run(["sbatch", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise click.ClickException(
            f"sbatch {path} failed: {out.stderr.strip() or out.stdout.strip()}"
        )
    click.echo(f"{out.stdout.strip()} ({path}; logs in {job_dir}/)")


def _check_ingest_args(args: tuple[str, ...]) -> None:
    """Refuse now what `xec ingest` would refuse on the nodes (unknown options, no -o), and the
    options the job sets itself."""
    from xec_cli.ingest_cmd import ingest_command

    own = [a for a in args if a.split("=")[0] in ("--part", "--finalize")]
    if own:
        raise click.UsageError(f"{own[0]}: the ingest job sets --part K/N itself (--nodes N)")
    try:
        ingest_command.make_context("ingest", list(args), resilient_parsing=False)
    except click.ClickException as exc:
        raise click.UsageError(f"ingest options: {exc.format_message()}") from None
