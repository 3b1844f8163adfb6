"""xectrain: configs, tasks, losses, metrics, the training loop, checkpoints, tracking, artifacts."""
