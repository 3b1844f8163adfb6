"""The typed sections of a run configuration.

Every attribute carries a docstring right below it; those docstrings become the descriptions of
the JSON Schema (`schemas/run_config.schema.json`) and the help of `xec train ... --options`.
Defaults are CPU-demo sized; `default_config(kind)` adjusts the few that differ per model kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from xecdata.loaders import BACKENDS
from xecdata.tasks import DEFAULT_TASK, TaskNames
from xecmodel import LOSSES, SIZES, TASKS
from xecmodel.encoder import POS_EMBEDS
from xecmodel.faces import OUTER_MODES
from xecmodel.masking import MASK_POOLS
from xecmodel.recon import RECON_LOSSES

Kind = Literal["regressor", "mae", "inpainter"]
KINDS: tuple[str, ...] = ("regressor", "mae", "inpainter")
# Task names (the task catalogue, read live), losses, transforms, sizes and modes are xecmodel's
# registries (one source of truth).
TASK_NAMES: Sequence[str] = TaskNames()
REWEIGHT_TASKS: Sequence[str] = TaskNames(reweightable=True)


def choice(default: str, choices: Any) -> Any:
    """A string field restricted to `choices` (checked on load, an enum in the JSON Schema)."""
    return field(default=default, metadata={"choices": tuple(choices)})


@dataclass
class DataConfig:
    """Where events come from and how they are batched."""

    store: str = "xec-demo/store.xec.zarr"
    """Zarr store written by `xec ingest` (a folder, conventionally ending in .xec.zarr)."""
    scheme: str = "new@1"
    """Normalization scheme id (name@version) to train on; the store must hold this scheme."""
    train_split: str = "train"
    """Split of the store used for training."""
    val_split: str = "val"
    """Split of the store used for validation and artifacts."""
    batch_size: int = 64
    """Events per batch and process (an optimizer step sees batch x processes x accum steps)."""
    val_batch_size: int | None = None
    """Events per validation batch; null means batch_size."""
    backend: str = choice("auto", BACKENDS)
    """Loader backend: auto picks resident or pinned on a GPU and cpu otherwise."""
    loader_threads: int = 4
    """Threads decoding store chunks in the loader."""
    max_train_batches: int | None = None
    """Stop each training epoch after this many batches (quick runs); null reads the whole split."""
    max_val_batches: int | None = None
    """Stop each validation after this many batches; null reads the whole split."""


@dataclass
class ModelConfig:
    """Which network to build and its options."""

    kind: Kind = "regressor"
    """Model kind: regressor (multi-task heads), mae (masked autoencoder) or inpainter."""
    size: str = choice("tiny", SIZES)
    """Size preset (xecmodel): tiny for CPU tests and demos, base (reference dims) or large."""
    outer_mode: str = choice("finegrid", OUTER_MODES)
    """Outer face input: finegrid (45x72 grid, counts shared by area) or split (coarse + centre)."""
    outer_fine_pool: list[int] = field(default_factory=lambda: [3, 3])
    """Pooling kernel (z, phi) applied to the fine outer grid before the encoder (finegrid)."""
    share_rect_backbone: bool = True
    """One ConvNeXt backbone shared by the rectangular faces (false: one per face)."""
    pos_embed: str = choice("learned", POS_EMBEDS)
    """Position embedding of the face tokens in the fusion transformer."""
    readout_dim: int | None = None
    """Regressor: width of the learned weighted-pooling readout over sensors; null disables."""
    readout_threshold: float = 0.1
    """Regressor readout: sensors with a learned weight at or above this (0-1) enter the max/min
    pooling (the weighted mean and sum use every live sensor)."""
    drop_path: float = 0.0
    """Stochastic depth rate of the encoder blocks."""
    encoder_from: str | None = None
    """Checkpoint (usually an MAE run's best) whose encoder initializes this model."""
    freeze_encoder: bool = False
    """Inpainter/regressor: keep the transferred encoder frozen and train only the heads."""
    mask_ratio: float = 0.6
    """MAE/inpainter: fraction of valid sensors masked per event (MAE 0.5-0.75, inpainter ~0.05)."""
    time_mask_ratio_scale: float = 1.0
    """MAE/inpainter: >1 prefers sensors with a valid time (needs mask_pool valid_npho)."""
    mask_pool: str = choice("valid_time", MASK_POOLS)
    """Maskable sensors: valid_time (time not sentinel) or valid_npho (dark sensors too)."""


@dataclass
class TaskConfig:
    """One regression task of the regressor."""

    enabled: bool = False
    """Train and validate this task."""
    loss: str = choice("smooth_l1", LOSSES)
    """Loss (xecmodel.LOSSES), computed in the transformed target space; relative_* on the
    physical value (energy only), angular / cosine on unit vectors (angle, angleVec)."""
    loss_kwargs: dict[str, float] = field(default_factory=dict)
    """Extra loss arguments, e.g. {beta: 1.0} for smooth_l1."""
    weight: float = 1.0
    """Weight of this task's loss in the total loss."""
    transform: str = "standardize"
    """Target transform (identity, log, inverse, standardize, log+standardize,
    inverse+standardize; standardization fitted on training targets), or one per component,
    comma-separated (e.g. uvwFI: standardize,standardize,log+standardize); predictions and
    metrics come back in physical units."""


@dataclass
class ReweightConfig:
    """Histogram reweighting of training events for one task (weights 1/(count+eps), mean 1)."""

    enabled: bool = False
    """Reweight training events by the inverse occupancy of this task's truth histogram."""
    bins: list[int] = field(default_factory=lambda: [20])
    """Bins per truth component (one entry, or one per component, e.g. [20, 20] for theta, phi)."""
    eps: float = 1e-6
    """Added to each bin count before inverting it."""


@dataclass
class ReconstructionConfig:
    """Reconstruction loss of the MAE and the inpainter (on masked sensors only)."""

    loss: str = choice("smooth_l1", RECON_LOSSES)
    """Element loss in normalized units."""
    loss_beta: float = 1.0
    """Transition point of smooth_l1 / huber."""
    npho_weight: float = 1.0
    """Weight of the photon-count channel loss."""
    time_weight: float = 1.0
    """Weight of the time channel loss."""
    npho_threshold: float = 100.0
    """Photons (physical) below which a sensor's time is left out of the time loss."""
    npho_time_weight: bool = True
    """Weight the time loss by sqrt(npho), as a chi-square would."""
    learn_channel_logvars: bool = False
    """Learn per-channel uncertainties that weight the npho and time losses."""
    predict_time: bool = True
    """Predict times as well as photon counts; false is npho-only mode (predict_channels [npho]
    in migrated configurations): no time loss, time metrics or predicted times."""


@dataclass
class AugmentConfig:
    """Training-time augmentation applied on the device (never to validation); the fields are
    those of xecdata.loaders.AugmentConfig, which applies them."""

    channel_dropout: float = 0.0
    """Probability that a sensor is set to the scheme's sentinels (a dead channel, never zero)."""
    npho_noise: float = 0.0
    """Extra photon-count noise as a fraction of the Poisson sigma (1 = one more Poisson draw)."""
    time_jitter_ps: float = 0.0
    """Gaussian jitter (ps) of the sensor times."""
    energy_scale: float = 0.0
    """Relative sigma of a per-event factor on all photon counts and the energy target."""


@dataclass
class TrainingConfig:
    """Optimization: schedule, precision, EMA and augmentation."""

    epochs: int = 5
    """Number of passes over the training split."""
    lr: float = 3e-4
    """Peak learning rate (AdamW)."""
    min_lr: float = 1e-6
    """Learning rate at the end of the cosine decay."""
    weight_decay: float = 1e-4
    """AdamW weight decay; norms, biases and embeddings are never decayed."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    warmup_epochs: float = 1.0
    """Linear warmup in epochs (converted to optimizer steps, at most all steps but one)."""
    scheduler: Literal["cosine", "onecycle", "cosine_restarts", "constant"] = "cosine"
    """Learning-rate schedule, stepped after every optimizer step."""
    restart_epochs: float = 10.0
    """cosine_restarts: length of the first cycle in epochs."""
    restart_mult: float = 2.0
    """cosine_restarts: each cycle is this many times longer than the previous one."""
    onecycle_pct_start: float = 0.3
    """onecycle: fraction of the run spent increasing the learning rate."""
    grad_accum_steps: int = 1
    """Batches whose gradients are summed before one optimizer step."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; null disables clipping."""
    ema_decay: float | None = 0.999
    """Decay of the exponential moving average of the weights used for validation; null disables."""
    ema_warmup_steps: int = 200
    """EMA decay ramps as decay*(1-exp(-step/ema_warmup_steps)); 0 uses the full decay at once."""
    amp: Literal["bf16", "fp16", "none"] = "bf16"
    """Mixed precision on CUDA (fp16 adds a gradient scaler); CPU always runs in float32."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    seed: int = 0
    """Seed of weights, shuffling, masking and augmentation."""
    deterministic: bool = False
    """Deterministic kernels (torch.use_deterministic_algorithms, cuDNN without autotuning):
    bit-reproducible runs on one machine, at some speed; ops without one warn."""
    device: Literal["auto", "cuda", "cpu"] = "auto"
    """Device: auto uses CUDA when available."""
    log_every: int = 20
    """Optimizer steps between progress/metric updates (the only host syncs of the hot loop)."""
    val_every: int = 1
    """Validate every N epochs (and always after the last one)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training-time augmentation."""
    transform_fit_batches: int = 50
    """Training batches whose targets fit the standardization of the regressor's targets."""


@dataclass
class CheckpointConfig:
    """Where the run writes and how it resumes."""

    dir: str = "artifacts"
    """Root folder; a run writes checkpoints and artifacts to <dir>/<run name>/."""
    every: int = 1
    """Write checkpoint_last every N epochs (always after the last epoch)."""
    keep: int = 0
    """Also keep the N most recent per-epoch snapshots (checkpoint_epoch_XXX.pth); 0 keeps none."""
    best_metric: str = "val/total_loss"
    """Validation metric that selects checkpoint_best (lower is better)."""
    resume_from: str | None = None
    """Checkpoint to resume (same kind) or to take the encoder from (MAE -> regressor/inpainter)."""
    refresh_lr: bool = False
    """On resume: restart the learning-rate schedule over the remaining epochs."""
    reset_epoch: bool = False
    """On resume: load the weights only and start again at epoch 1 with a fresh optimizer."""
    new_mlflow_run: bool = False
    """On resume: open a new MLflow run instead of continuing the recorded one."""
    save_artifacts: bool = True
    """Write prediction CSVs and plots after validation of a new best and at the end."""
    best_artifacts_keep: int = 3
    """Regressor: also keep the CSVs, ROOT file and PDFs of the N latest best epochs (*_ep<N>.*)
    beside the plain-named ones of the best; 0 keeps only the plain-named ones."""
    export_onnx: bool = False
    """At the end, export the best model to <run dir>/<run name>.onnx (as `xec export onnx`)."""
    onnx_exporter: Literal["dynamo", "torchscript"] = "dynamo"
    """torch.onnx exporter of export_onnx (torchscript: the legacy one, faster to run)."""
    onnx_filename: str | None = None
    """File name of export_onnx's model inside the run folder; null: <run name>.onnx."""
    encoder_every: int = 10
    """MAE: also write the (EMA) encoder as mae_encoder_epoch_NNN.pth every N epochs and after
    the last (0: never); mae_encoder_best.pth follows the best model either way."""
    predictions_every: int = 10
    """MAE/inpainter: stream validation predictions to ROOT every N epochs (and at the end)."""
    worst_events: int = 5
    """Regressor: event displays of this many highest-loss validation events (end of run)."""


@dataclass
class TrackingConfig:
    """MLflow tracking (rank 0 only)."""

    enabled: bool = True
    """Log params, metrics and artifacts to MLflow."""
    uri: str | None = None
    """MLflow tracking URI (sqlite:///file.db, http://host:5000, ...); null: MLFLOW_TRACKING_URI
    from the environment, else the embedded sqlite:///mlruns.db."""
    experiment: str | None = None
    """MLflow experiment name; null: MLFLOW_EXPERIMENT_NAME (or MLFLOW_EXPERIMENT_ID) from the
    environment, else xec-<model kind>."""
    run_name: str | None = None
    """Run name (also the artifact folder name); null makes <kind>-<date>-<time>."""
    artifact_location: str | None = None
    """Where a new experiment keeps its artifacts (local folder or URI); null: a tracking
    server's own artifact root, or ./mlartifacts for a local store (SQLite, file)."""
    system_metrics: bool = True
    """Log throughput, data-wait fraction, GPU and host memory each epoch."""
    earlier_names: bool = True
    """Also log each metric under the key the earlier tool's documentation gives it where that
    differs from xec's (val_cos, val_resolution_deg, theta_bias, val/npho_loss, ...)."""
    tensorboard: str | None = None
    """Also write every metric as TensorBoard scalars under <folder>/<run name> (rank 0; needs
    the tensorboard package: pip install 'xec[tensorboard]'); null: MLflow only."""


def _default_tasks() -> dict[str, TaskConfig]:
    """One entry per task of the catalogue with its default loss and transform; angle is on.
    Regression targets are standardized; directions and classes are used as they are."""
    return {
        name: TaskConfig(
            enabled=name == DEFAULT_TASK, loss=info.default_loss, transform=info.transform
        )
        for name, info in TASKS.items()
    }


def _default_reweighting() -> dict[str, ReweightConfig]:
    """One entry per reweightable task of the catalogue with its default bins (off)."""
    return {
        name: ReweightConfig(bins=list(info.reweight.bins))
        for name, info in TASKS.items()
        if info.reweight is not None
    }


@dataclass
class RunConfig:
    """Everything one training run needs; saved with the run and inside every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    """Store, scheme, splits and batching."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network kind, size and options."""
    tasks: dict[str, TaskConfig] = field(
        default_factory=_default_tasks, metadata={"keys": TASK_NAMES}
    )
    """Regressor tasks by name (the task catalogue: angle, energy, timing, uvwFI, ...)."""
    reweighting: dict[str, ReweightConfig] = field(
        default_factory=_default_reweighting, metadata={"keys": REWEIGHT_TASKS}
    )
    """Histogram reweighting of training events by task."""
    recon: ReconstructionConfig = field(default_factory=ReconstructionConfig)
    """MAE/inpainter reconstruction loss."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """Optimizer, schedule, precision, EMA and augmentation."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoints, resume options and artifacts."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """MLflow tracking."""

    @property
    def enabled_tasks(self) -> list[str]:
        """Names of the enabled regressor tasks, in registry order."""
        return [name for name, task in self.tasks.items() if task.enabled]
