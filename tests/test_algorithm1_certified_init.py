"""Algorithm 1 with a certified method: the robust model starts at the IBP spread as
``semirobust train --method`` does, from the draw it shares with the normal model under
``--init shared`` (the same directions, each layer scaled), each residual branch zeroed;
the recipe stored with the robust checkpoint says so; PGD runs are unchanged."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_algorithm1 import TINY, run_cli
from torch import nn

from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.zoo.resnet import BasicBlock
from semirobust.empirical.studies.algorithm1 import Algorithm1Config, _initial_weights
from semirobust.empirical.studies.training import TrainRecipe

SPEC = ArchitectureSpec("resnet18", (1, 8, 8), 10, (0.5,), (0.25,), {"width": 4})


def _weights(model: nn.Module) -> dict[str, int]:
    """``{state key: fan_in}`` of every Linear/Conv2d weight."""
    return {f"{name}.weight": module.weight[0].numel() for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, nn.Conv2d))}


def _config(method: str, init: str) -> Algorithm1Config:
    return Algorithm1Config(architecture="resnet18", architecture_kwargs={"width": 4}, init=init,
                            recipe=TrainRecipe(method=method))


def test_shared_draw_is_scaled_to_the_ibp_spread_and_branches_start_at_zero():
    normal, robust = _initial_weights(SPEC, _config("crown-ibp", "shared"))
    probe = build_model(SPEC)
    for key, fan_in in _weights(probe).items():
        a, b = normal[key].flatten(), robust[key].flatten()
        assert b.pow(2).mean().sqrt().item() == pytest.approx(math.sqrt(2 * math.pi) / fan_in, rel=1e-5)
        assert torch.nn.functional.cosine_similarity(a, b, dim=0).item() == pytest.approx(1.0, abs=1e-6)
    blocks = [name for name, m in probe.named_modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    for name in blocks:
        assert robust[f"{name}.bn2.weight"].abs().max() == 0
        assert normal[f"{name}.bn2.weight"].abs().min() == 1  # the normal model is untouched
    assert robust[f"{blocks[0]}.bn1.weight"].equal(normal[f"{blocks[0]}.bn1.weight"])


def test_independent_draw_is_another_draw_at_the_same_spread():
    normal, robust = _initial_weights(SPEC, _config("ibp", "independent"))
    for key, fan_in in _weights(build_model(SPEC)).items():
        assert robust[key].pow(2).mean().sqrt().item() == pytest.approx(math.sqrt(2 * math.pi) / fan_in, rel=1e-5)
        cosine = torch.nn.functional.cosine_similarity(normal[key].flatten(), robust[key].flatten(), dim=0)
        assert abs(cosine.item()) < 0.9


def test_pgd_runs_keep_the_architectures_own_draw():
    config = _config("pgd", "shared")
    normal, robust = _initial_weights(SPEC, config)
    assert all(normal[key].equal(robust[key]) for key in normal)
    assert config.adversarial_recipe().initialisation == "default"


def test_the_recipes_state_the_initialisation_of_each_step():
    config = _config("crown-ibp", "shared")
    assert config.normal_recipe().initialisation == "default"
    robust = config.adversarial_recipe()
    assert robust.initialisation == "ibp-scaled"
    assert "shares" in robust.to_dict()["certified_training"]["initialisation"]
    assert config.finetuning_recipe().initialisation == "default"  # f_b starts trained


def test_algorithm1_with_ibp_stores_the_scaled_initialisation(tmp_path):
    out = tmp_path / "ibp"
    assert run_cli(*TINY, "--method", "ibp", "--trials", "1", "--out", str(out)) == 0
    robust = json.loads((out / "robust" / "config.json").read_text())["recipe"]
    assert robust["method"] == "ibp" and robust["initialisation"] == "ibp-scaled"
    assert "Shi et al. 2021" in robust["certified_training"]["initialisation"]
    normal = json.loads((out / "normal" / "config.json").read_text())["recipe"]
    assert normal["initialisation"] == "default"
