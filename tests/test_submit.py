"""`xec submit`: SLURM job files that run torchrun training (or Jupyter), executed here with
stand-ins for srun / scontrol / torchrun / sbatch to check the command they end up running."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from xec_cli.main import main


def _shims(tmp_path: Path) -> dict[str, str]:
    """PATH with srun (runs its arguments), scontrol, torchrun (records its arguments, one per
    line) and sbatch (answers like SLURM); a fake environment with bin/activate."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    scripts = {
        "srun": 'exec "$@"',
        "scontrol": f'echo "$@" >> {tmp_path / "scontrol.log"}; echo node17; echo node18',
        "torchrun": f'printf "%s\\n" "$@" > {tmp_path / "torchrun.args"}',
        "sbatch": 'echo "Submitted batch job 4242"',
    }
    for name, body in scripts.items():
        (bin_ / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_ / name).chmod(0o755)
    env = tmp_path / "env" / "bin"
    env.mkdir(parents=True)
    (env / "activate").write_text("export XEC_ACTIVATED=yes\n")
    return {"PATH": f"{bin_}:{os.environ['PATH']}", "ENV": str(tmp_path / "env")}


def test_training_job_runs_torchrun_with_options_and_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = _shims(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, [
        "submit", "-p", "gh-daily", "--nodes", "2", "--gpus", "4", "--env", shims["ENV"],
        "--dry-run", "regressor", "-c", "configs/regressor.yaml", "--store", "my store.xec.zarr",
        "--set", "training.lr=1e-4",
    ])  # fmt: skip
    assert out.exit_code == 0, out.output
    job = tmp_path / "jobs" / "xec-regressor.sbatch"
    text = job.read_text()
    log = f"#SBATCH --output={tmp_path}/jobs/%x-%j.out"
    for line in ("#SBATCH --partition=gh-daily", "#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --cpus-per-task=64", log, "#SBATCH --signal=B:USR1@300",
                 "#SBATCH --requeue"):  # fmt: skip
        assert line in text.splitlines()
    env = {"PATH": shims["PATH"], "SLURM_JOB_NODELIST": "node[17-18]", "SLURM_JOB_ID": "9",
           "BATCH_SIZE": "512", "TASKS": "angle,energy", "HOME": str(tmp_path)}  # fmt: skip
    subprocess.run(["bash", str(job)], env=env, check=True, cwd=tmp_path)
    args = (tmp_path / "torchrun.args").read_text().splitlines()
    assert args[:5] == ["--nnodes=2", "--nproc-per-node=4", "--rdzv-id=9", "--rdzv-backend=c10d",
                        "--rdzv-endpoint=node17:29500"]  # fmt: skip
    assert args[5:] == ["-m", "xec_cli.main", "train", "regressor", "--run-name=xec-regressor-9",
                        "--set", "checkpoint.resume_last=true", "-c", "configs/regressor.yaml",
                        "--store", "my store.xec.zarr", "--set", "training.lr=1e-4",
                        "--batch-size", "512", "--tasks", "angle,energy"]  # fmt: skip
    assert "requeue" not in (tmp_path / "scontrol.log").read_text()  # it finished

    env["XEC_ENV_X86"] = str(tmp_path / "nowhere")  # neither a venv nor a conda env here
    env["PATH"] = f"{tmp_path / 'bin'}:/usr/bin:/bin"
    res = subprocess.run(["bash", str(job)], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2 and "no Python environment at" in res.stderr


def test_submission_and_jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shims = _shims(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", shims["PATH"])
    out = CliRunner().invoke(main, ["submit", "-p", "a100", "--name", "scan1", "mae", "-c", "x"])
    assert out.exit_code == 0, out.output
    assert (
        "Submitted batch job 4242" in out.output and (tmp_path / "jobs" / "scan1.sbatch").is_file()
    )

    out = CliRunner().invoke(main, ["submit", "-p", "gh-interactive", "--port", "8890", "jupyter"])
    assert out.exit_code == 0, out.output
    text = (tmp_path / "jobs" / "xec-jupyter.sbatch").read_text()
    assert "jupyter lab --no-browser --ip=127.0.0.1 --port=8890" in text
    assert "ssh -N -L 8890:localhost:8890" in text and "#SBATCH --nodes=1" in text
    out = CliRunner().invoke(main, ["submit", "-p", "x", "jupyter", "--epochs", "3"])
    assert out.exit_code != 0 and "takes no training options" in out.output

    (tmp_path / "bin" / "sbatch").write_text("#!/bin/bash\necho 'invalid partition' >&2; exit 1\n")
    out = CliRunner().invoke(main, ["submit", "-p", "nope", "regressor"])
    assert out.exit_code != 0 and "failed: invalid partition" in out.output


def test_ingest_array_job_parts_fill_one_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`xec submit ingest --nodes 3`: an array job whose tasks, run here in the order 3, 1, 2
    (stand-in srun; python is this interpreter), fill one store equal to a one-go ingest."""
    import sys

    from tests.rootfiles import array_bytes, write_uproot
    from xecdata.ingest import ingest
    from xecdata.store import IncompleteStoreError, open_store

    shims = _shims(tmp_path)
    (tmp_path / "bin" / "python").write_text(f'#!/bin/bash\nexec {sys.executable} "$@"\n')
    (tmp_path / "bin" / "python").chmod(0o755)
    src = tmp_path / "in"
    src.mkdir()
    for i, n in enumerate((200, 130)):
        write_uproot(src / f"f{i}.root", n, seed=70 + i, baskets=2)
    opts = ["--chunk-events", "32", "--shard-chunks", "2", "--workers", "1"]
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(
        main,
        [
            "submit",
            "-p",
            "cpu",
            "--nodes",
            "3",
            "--env",
            shims["ENV"],
            "--dry-run",
            "ingest",
            str(src),
            "-o",
            "big.xec.zarr",
            *opts,
        ],
    )
    assert out.exit_code == 0, out.output
    job = tmp_path / "jobs" / "xec-ingest.sbatch"
    lines = job.read_text().splitlines()
    for line in ("#SBATCH --array=1-3", "#SBATCH --exclusive", "#SBATCH --nodes=1",
                 f"#SBATCH --output={tmp_path}/jobs/%x-%A_%a.out"):  # fmt: skip
        assert line in lines
    assert not any("gpus" in ln for ln in lines)
    store = tmp_path / "big.xec.zarr"
    for n, k in enumerate((3, 1, 2), 1):
        env = {"PATH": shims["PATH"], "SLURM_ARRAY_TASK_ID": str(k), "HOME": str(tmp_path)}
        subprocess.run(["bash", str(job)], env=env, check=True, cwd=tmp_path)
        if n < 3:
            with pytest.raises(IncompleteStoreError):
                open_store(store)
    ref = tmp_path / "ref.xec.zarr"
    ingest([src], ref, chunk_events=32, shard_chunks=2, workers=1, progress=False)
    assert open_store(store).complete and array_bytes(store) == array_bytes(ref)

    refused = {"ingest options": ["ingest", str(src)],
               "sets --part": ["ingest", str(src), "-o", "x", "--part", "1/2"]}  # fmt: skip
    for why, bad in refused.items():
        out = CliRunner().invoke(main, ["submit", "-p", "cpu", "--dry-run", *bad])
        assert out.exit_code != 0 and why in out.output, out.output


STAND_IN_RANKS = """#!/bin/bash
# torchrun stand-in: a run that stops on SIGTERM with $ON_TERM, or ends at once with $EXIT
trap 'touch {tmp}/got_term; exit ${{ON_TERM:-1}}' TERM
[ -n "${{EXIT:-}}" ] && exit "$EXIT"
touch {tmp}/started
for _ in $(seq 600); do sleep 0.05; done
"""


@pytest.mark.parametrize(
    ("case", "status", "requeued"),
    [("usr1, torchrun exits 1", 1, True), ("usr1, xec train exits 75", 75, True),
     ("sigterm alone: 75", 75, True), ("finished", 0, False), ("failed", 1, False)],
)  # fmt: skip
def test_training_job_passes_the_signal_on_and_requeues_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, status: int, requeued: bool
) -> None:
    """SIGUSR1 to the batch shell (what --signal=B:USR1@300 sends) reaches the ranks as
    SIGTERM; the job requeues itself when the run stopped early, and only then."""
    import signal
    import time

    shims = _shims(tmp_path)
    (tmp_path / "bin" / "torchrun").write_text(STAND_IN_RANKS.format(tmp=tmp_path))
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, ["submit", "-p", "a100", "--env", shims["ENV"], "--dry-run",
                                    "regressor", "--store", "s"])  # fmt: skip
    assert out.exit_code == 0, out.output
    job = tmp_path / "jobs" / "xec-regressor.sbatch"
    env = {"PATH": shims["PATH"], "SLURM_JOB_NODELIST": "node17", "SLURM_JOB_ID": "9",
           "HOME": str(tmp_path)}  # fmt: skip
    if case.startswith("usr1"):
        env["ON_TERM"] = str(status)
    else:
        env["EXIT"] = str(status)
    proc = subprocess.Popen(["bash", str(job)], env=env, cwd=tmp_path, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    if case.startswith("usr1"):
        deadline = time.monotonic() + 20
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert (tmp_path / "got_term").exists() == case.startswith("usr1")
    log = (tmp_path / "scontrol.log").read_text().splitlines()
    assert ("requeue 9" in log) == requeued, (log, err)
    assert ("continues from its checkpoint_last" in err) == requeued
