"""SLURM batch scripts (`xec submit`): training, one job of N nodes x G GPUs running
`torchrun -m xec_cli.main train ...`; an interactive Jupyter server on a GPU node; or a big
ingest, an array job of N tasks (one whole node each) running `xec ingest ... --part K/N`.

The script picks the Python environment by the node's architecture (x86_64 for A100/H100
nodes, aarch64 for GH200), so one job file serves both kinds of partition. It takes overrides
from the environment at submission time
(`BATCH_SIZE=512 TASKS=angle,energy sbatch job.sbatch`; see ENV_OVERRIDES), appended after the
options written into the file, so they win.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

# environment variable -> `xec train` option it sets when non-empty
ENV_OVERRIDES: dict[str, str] = {
    "BATCH_SIZE": "--batch-size",
    "EPOCHS": "--epochs",
    "LR": "--lr",
    "TASKS": "--tasks",
    "RESUME_FROM": "--resume-from",
    "RUN_NAME": "--run-name",
    "STORE": "--store",
}
RDZV_PORT = 29500


@dataclass(frozen=True)
class Resources:
    """What the job asks SLURM for."""

    name: str
    partition: str
    time: str = "12:00:00"
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_gpu: int = 16
    mem: str | None = None
    account: str | None = None
    log_dir: str = "jobs"


def _header(r: Resources) -> list[str]:
    """#SBATCH lines; gpus_per_node 0: a CPU job that takes its nodes whole (--exclusive)."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={r.name}",
        f"#SBATCH --partition={r.partition}",
        f"#SBATCH --time={r.time}",
        f"#SBATCH --nodes={r.nodes}",
        "#SBATCH --ntasks-per-node=1",
    ]
    if r.gpus_per_node:
        lines += [
            f"#SBATCH --gpus-per-node={r.gpus_per_node}",
            f"#SBATCH --cpus-per-task={r.cpus_per_gpu * r.gpus_per_node}",
            f"#SBATCH --output={r.log_dir}/%x-%j.out",
        ]
    else:
        lines += ["#SBATCH --exclusive", f"#SBATCH --output={r.log_dir}/%x-%A_%a.out"]
    lines += [f"#SBATCH --mem={r.mem}"] if r.mem else []
    lines += [f"#SBATCH --account={r.account}"] if r.account else []
    return lines


def _activate(env_x86: str, env_arm: str | None) -> list[str]:
    """Shell lines activating a venv or conda environment chosen by `uname -m`."""
    arm = env_arm or env_x86
    return [
        "set -euo pipefail",
        'case "$(uname -m)" in',
        f"  aarch64) XEC_ENV=${{XEC_ENV_ARM:-{shlex.quote(arm)}}} ;;",
        f"  *) XEC_ENV=${{XEC_ENV_X86:-{shlex.quote(env_x86)}}} ;;",
        "esac",
        'if [ -f "$XEC_ENV/bin/activate" ]; then source "$XEC_ENV/bin/activate"',
        'elif command -v conda >/dev/null; then eval "$(conda shell.bash hook)"; '
        'conda activate "$XEC_ENV"',
        'else echo "no Python environment at $XEC_ENV (set XEC_ENV_X86 / XEC_ENV_ARM)" >&2; '
        "exit 2; fi",
        "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}",
    ]


def train_job(
    r: Resources,
    kind: str,
    train_args: Sequence[str],
    env_x86: str,
    env_arm: str | None = None,
    workdir: str | None = None,
) -> str:
    """The sbatch script of `xec train KIND TRAIN_ARGS...` over r.nodes x r.gpus_per_node."""
    lines = _header(r) + _activate(env_x86, env_arm)
    lines += [f"cd {shlex.quote(workdir)}"] if workdir else []
    lines += [
        "args=(" + " ".join(shlex.quote(a) for a in train_args) + ")",
        "# overrides from the environment at submission (sbatch exports it)",
    ]
    lines += [
        f'[ -n "${{{var}:-}}" ] && args+=({opt} "${var}")' for var, opt in ENV_OVERRIDES.items()
    ]
    lines += [
        'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)  # no SIGPIPE',
        f"srun torchrun --nnodes={r.nodes} --nproc-per-node={r.gpus_per_node} "
        f"--rdzv-id=$SLURM_JOB_ID --rdzv-backend=c10d --rdzv-endpoint=$head:{RDZV_PORT} "
        f'-m xec_cli.main train {shlex.quote(kind)} "${{args[@]}}"',
    ]
    return "\n".join(lines) + "\n"


def ingest_job(
    r: Resources,
    parts: int,
    ingest_args: Sequence[str],
    env_x86: str,
    env_arm: str | None = None,
    workdir: str | None = None,
) -> str:
    """The sbatch script of an array job whose task K of `parts` runs `xec ingest
    INGEST_ARGS... --part K/parts` on a whole node (workers: all its cores); the last part to
    finish completes the store. A task that failed or ran out of time resumes when run again
    (`scontrol requeue JOBID_K`, or `sbatch --array=K` of this file)."""
    if r.gpus_per_node or r.nodes != 1:
        raise ValueError("an ingest part runs on one whole node without GPUs")
    lines = [*_header(r), f"#SBATCH --array=1-{parts}"]
    lines += _activate(env_x86, env_arm)
    lines += [f"cd {shlex.quote(workdir)}"] if workdir else []
    lines += [
        "args=(" + " ".join(shlex.quote(a) for a in ingest_args) + ")",
        f'srun python -m xec_cli.main ingest "${{args[@]}}" --part "$SLURM_ARRAY_TASK_ID/{parts}" '
        "--quiet",
    ]
    return "\n".join(lines) + "\n"


def jupyter_job(
    r: Resources, port: int, env_x86: str, env_arm: str | None = None, workdir: str | None = None
) -> str:
    """The sbatch script of a Jupyter server on one GPU node; its log says how to tunnel."""
    lines = _header(r) + _activate(env_x86, env_arm)
    lines += [f"cd {shlex.quote(workdir)}"] if workdir else []
    lines += [
        'command -v jupyter >/dev/null || { echo "jupyter is not installed in $XEC_ENV: '
        'pip install jupyterlab" >&2; exit 2; }',
        'echo "tunnel from your machine: ssh -N -L '
        f'{port}:localhost:{port} -J $USER@<login node> $USER@$(hostname)"',
        f"jupyter lab --no-browser --ip=127.0.0.1 --port={port}",
    ]
    return "\n".join(lines) + "\n"
