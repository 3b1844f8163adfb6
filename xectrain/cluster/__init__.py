"""Cluster jobs: SLURM batch scripts for training and Jupyter."""
