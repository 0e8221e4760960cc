"""Training: the Lightning module, checkpoints and the run driver."""
