"""Test configuration: a fixed, derandomised hypothesis profile for CI and local runs.

``HYPOTHESIS_PROFILE=dev`` gives more examples for local exploration. torch runs on one
thread: the tests' tensors are small, and on a shared 2-core machine extra OpenMP threads
made small float64 convolutions hundreds of times slower while other jobs ran.
"""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(1)
