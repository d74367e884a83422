"""Random streams of the dependency estimators, derived from one seed.

Every random draw (reduction projection, per-class preparation such as KSG jitter or
EDGE's hash projection, half-samples, permutations) comes from its own generator keyed
by ``(seed, stream, class label, layer or pair index)``, so a value does not depend on
the order in which classes and layers are processed, and a reference implementation
can reproduce the same draws (benchmarks/dependency.py does).
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"reduce": 1, "prepare": 2, "half": 3, "permute": 4}


def stream_generator(seed: int, stream: str, *parts: int) -> torch.Generator:
    """A CPU generator for ``stream`` (one of :data:`STREAMS`) and integer ``parts``."""
    entropy = [int(seed) & 0xFFFFFFFF, STREAMS[stream]] + [int(p) & 0xFFFFFFFF for p in parts]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) % 2**63)
