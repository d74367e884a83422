"""semirobust.empirical: measure the quantities of THEORY.md on PyTorch networks."""
