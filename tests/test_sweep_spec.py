"""Sweep specs (empirical/studies/sweep_spec.py): the grid they expand to, the models its
settings share, and one clear line for every malformed spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from semirobust.empirical.studies.sweep_spec import load_spec, parse_spec, training_key
from semirobust.errors import BadInput

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_tiny_example_is_a_2x2x2_grid_sharing_one_normal_and_two_robust_models():
    settings = load_spec(EXAMPLES / "sweep-tiny.toml").settings()
    assert len(settings) == 8
    assert len({s.name for s in settings}) == 8
    assert len({training_key(s.config, "normal") for s in settings}) == 1
    by_init = {init: {training_key(s.config, "robust") for s in settings if s.config.init == init}
               for init in ("shared", "independent")}
    assert all(len(keys) == 1 for keys in by_init.values())
    assert by_init["shared"] != by_init["independent"]
    first = settings[0]
    assert first.config.architecture_kwargs == {"width": 8} and first.config.recipe.epochs == 4
    assert first.name == "attack=pgd,fb_layers=3,init=shared"


def test_the_paper_example_is_the_supplements_grid_less_impossible_splits():
    settings = load_spec(EXAMPLES / "sweep-paper.toml").settings()
    assert len(settings) == 5 * 3 * 5 * 2 * 2 - 3 * 5 * 2  # AlexNet has no 12-layer f_b
    assert {s.config.recipe.method for s in settings} == {"pgd", "trades"}
    # the training method changes the robust model only
    pgd, trades = (next(s for s in settings if s.config.recipe.method == m and s.config.architecture == "vgg16-bn"
                        and s.config.dataset == "cifar10" and s.config.attack == "pgd" and s.config.fb_layers == 4)
                   for m in ("pgd", "trades"))
    assert training_key(pgd.config, "normal") == training_key(trades.config, "normal")
    assert training_key(pgd.config, "robust") != training_key(trades.config, "robust")


def test_models_are_shared_exactly_when_their_training_is_the_same():
    spec = parse_spec({"fixed": {"trials": 1}, "axes": {"seed": [0, 1], "eps": [0.1, 0.2], "estimator": ["ksg", "hsic"]}})
    settings = spec.settings()
    normal = {training_key(s.config, "normal") for s in settings}
    robust = {training_key(s.config, "robust") for s in settings}
    assert len(normal) == 2  # the seed; eps and the estimator do not change normal training
    assert len(robust) == 4  # the seed and eps; the estimator does not


@pytest.mark.parametrize(("data", "message"), [
    ({"fixd": {}}, r"unknown table\(s\) fixd"),
    ({"fixed": {"trails": 2}}, r"\[fixed\]: unknown key\(s\) trails"),
    ({"axes": {"attack": "pgd"}}, r"\[axes\] attack = 'pgd': expected a non-empty list"),
    ({"axes": {"attack": []}}, r"expected a non-empty list"),
    ({"axes": {"seed": [0, 0]}}, r"repeated values"),
    ({"axes": {"colour": ["red"]}}, r"\[axes\]: unknown key\(s\) colour"),
    ({"fixed": {"seed": 0}, "axes": {"seed": [1]}}, r"seed both fixed and an axis"),
    ({"axes": {"attack": ["pgd", "nope"]}}, r"unknown attack 'nope'"),
    ({"axes": {"init": ["shared"]}, "exclude": [{"init": "shared"}]}, r"leave no setting"),
    ({"axes": {"init": ["shared"]}, "exclude": [{"attack": "pgd"}]}, r"\[\[exclude\]\]: unknown key\(s\) attack"),
    ({"recipe": {"eps": 0.3}}, r"\[recipe\]: unknown key\(s\) eps"),
])
def test_a_malformed_spec_is_one_line_naming_the_key(data, message):
    with pytest.raises(BadInput, match=message) as caught:
        parse_spec(data)
    assert "\n" not in str(caught.value)


def test_a_spec_that_is_not_toml_or_missing_is_named(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        load_spec(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[axes\nattack = 1\n")
    with pytest.raises(BadInput, match="broken.toml: not valid TOML"):
        load_spec(broken)
