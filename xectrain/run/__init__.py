"""A training run: setup and the epoch loop (fit), the step loop, optimizer and schedule,
EMA, loaders, checkpoints saved and restored, validation per epoch, the run folder's outputs,
MLflow tracking."""
