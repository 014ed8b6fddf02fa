"""The training engine: one explicit loop plus its checkpoints, EMA, logging and DDP."""
