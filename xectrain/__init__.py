"""xectrain: configs, metrics, the training loop, checkpoints, tracking and artifacts."""
