"""What runs a model on batches, shared by training, evaluation and serving: the model built
from a run config and its per-kind step, mixed precision, the distributed world."""
