"""The pytest plugin (loaded automatically through the ``pytest11`` entry point
``semirobust`` once the package is installed).

It adds:

* ``--semirobust-checkpoint DIR`` (or the ini option ``semirobust_checkpoint``): the
  checkpoint directory a lab's tests check; ``--semirobust-samples N`` (default 256):
  how many of its dataset's test inputs they use;
* the fixture ``semirobust_checkpoint``: that checkpoint loaded safely (safetensors or a
  weights-only state dict) with the first N test inputs of its dataset, as a
  :class:`CheckpointUnderTest`; a test using it is skipped when no checkpoint is given;
* the hypothesis profile ``semirobust-ci`` (derandomised, 25 examples, no deadline), for
  ``pytest --hypothesis-profile semirobust-ci``.

torch and the package are imported only when the fixture is used, so the plugin costs
nothing in a pytest session that does not use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

CI_PROFILE = "semirobust-ci"
DEFAULT_SAMPLES = 256

settings.register_profile(
    CI_PROFILE,
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class CheckpointUnderTest:
    """A loaded checkpoint (model in eval mode, its config) and test inputs in ``[0,1]``."""

    path: str
    model: Any
    config: Any
    x: Any
    y: Any

    @property
    def name(self) -> str:
        return f"{self.config.architecture.name} at {self.path}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("semirobust", "semirobust: property tests on trained networks")
    group.addoption(
        "--semirobust-checkpoint", metavar="DIR", default=None,
        help="checkpoint directory for the semirobust_checkpoint fixture",
    )
    group.addoption(
        "--semirobust-samples", metavar="N", type=int, default=None,
        help=f"test inputs the semirobust_checkpoint fixture loads (default {DEFAULT_SAMPLES})",
    )
    parser.addini("semirobust_checkpoint", "checkpoint directory for the semirobust_checkpoint fixture")


@pytest.fixture(scope="session")
def semirobust_checkpoint(pytestconfig: pytest.Config) -> CheckpointUnderTest:
    """The checkpoint given by ``--semirobust-checkpoint`` with its first test inputs."""
    path = pytestconfig.getoption("semirobust_checkpoint") or pytestconfig.getini("semirobust_checkpoint")
    if not path:
        pytest.skip("no checkpoint given: pass --semirobust-checkpoint DIR")
    samples = pytestconfig.getoption("semirobust_samples") or DEFAULT_SAMPLES
    if samples < 1:
        raise pytest.UsageError(f"--semirobust-samples {samples}: expected an integer >= 1")

    from semirobust.empirical.data import load_dataset
    from semirobust.empirical.model.checkpoint import load_checkpoint
    from semirobust.errors import BadInput

    try:
        model, config = load_checkpoint(path)
        data = load_dataset(config.dataset, seed=config.seed)
    except BadInput as error:
        pytest.fail(f"--semirobust-checkpoint: {error}", pytrace=False)
    return CheckpointUnderTest(str(path), model, config, data.x_test[:samples], data.y_test[:samples])
