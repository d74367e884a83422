"""A sweep over Algorithm 1 settings (THEORY.md section 6), read from a TOML spec.

A spec has three tables::

    [fixed]                 # any Algorithm 1 setting, the same for every run
    trials = 2
    eps = 0.1

    [recipe]                # the training recipe (semirobust.empirical.studies.training.TrainRecipe)
    epochs = 10

    [axes]                  # each a list; the sweep is their Cartesian product
    architecture = ["digits-cnn"]
    attack = ["pgd", "fgsm"]
    fb_layers = [3, 4]
    method = ["pgd", "trades"]     # adversarial training method (a recipe field)
    init = ["shared", "independent"]
    seed = [0, 1]
    estimator = ["ksg"]

plus, optionally, ``[architecture_kwargs.NAME]`` (options of architecture ``NAME``),
``data_root`` in ``[fixed]`` for datasets read from disk, and ``[[exclude]]`` tables, each
dropping the grid points that match all its axis values (``{architecture = "alexnet",
fb_layers = 12}``: AlexNet has 6 weight layers). Every key is checked against the
settings it names; an unknown key or a value of the wrong type is one :class:`BadInput`
line naming it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from semirobust.empirical.studies.algorithm1 import Algorithm1Config
from semirobust.empirical.studies.training import TrainRecipe
from semirobust.errors import BadInput

#: Settings an axis may vary: Algorithm 1's own, and the recipe's training method.
AXES = ("architecture", "dataset", "attack", "fb_layers", "method", "init", "seed", "estimator",
        "eps", "norm", "tolerance")
CONFIG_FIELDS = {f.name for f in fields(Algorithm1Config)} - {"recipe", "architecture_kwargs"}
RECIPE_FIELDS = {f.name for f in fields(TrainRecipe)}
#: Keys of [fixed] that are not Algorithm 1 settings.
SWEEP_KEYS = {"data_root"}


@dataclass(frozen=True)
class Setting:
    """One point of the grid: its axis values and the Algorithm 1 configuration they give."""

    axes: dict[str, Any]
    config: Algorithm1Config

    @property
    def name(self) -> str:
        """A folder name that says what varies: ``attack=pgd,fb_layers=3,...``."""
        return ",".join(f"{key}={value}" for key, value in self.axes.items()) or "default"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec: the fixed settings, the recipe, the axes (in file order)."""

    fixed: dict[str, Any]
    recipe: dict[str, Any]
    axes: dict[str, list[Any]]
    architecture_kwargs: dict[str, dict[str, Any]]
    data_root: str | None = None
    exclude: tuple[dict[str, Any], ...] = ()

    def settings(self) -> list[Setting]:
        """The Cartesian product of the axes less the excluded points, each as a
        :class:`Setting` (validated)."""
        keys = list(self.axes)
        points = (dict(zip(keys, values)) for values in itertools.product(*(self.axes[k] for k in keys)))
        return [self._setting(point) for point in points
                if not any(all(point.get(k) == v for k, v in rule.items()) for rule in self.exclude)]

    def _setting(self, point: dict[str, Any]) -> Setting:
        values = {**self.fixed, **{k: v for k, v in point.items() if k != "method"}}
        recipe = {**self.recipe, **({"method": point["method"]} if "method" in point else {})}
        architecture = values.get("architecture", Algorithm1Config.architecture)
        try:
            config = Algorithm1Config(
                **values, recipe=TrainRecipe.from_dict(recipe),
                architecture_kwargs=dict(self.architecture_kwargs.get(architecture, {})),
            )
        except TypeError as error:
            raise BadInput(f"sweep spec: {error}") from None
        return Setting(point, config)

    def to_dict(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "recipe": self.recipe, "axes": self.axes,
                "architecture_kwargs": self.architecture_kwargs, "data_root": self.data_root,
                "exclude": list(self.exclude)}


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate the TOML spec at ``path`` (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"sweep spec {path}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise BadInput(f"sweep spec {path}: not valid TOML ({error})") from None
    return parse_spec(data, str(path))


def parse_spec(data: dict[str, Any], source: str = "sweep spec") -> SweepSpec:
    unknown = sorted(set(data) - {"fixed", "recipe", "axes", "architecture_kwargs", "exclude"})
    if unknown:
        raise BadInput(f"{source}: unknown table(s) {', '.join(unknown)}; expected fixed, recipe, "
                       "axes, architecture_kwargs, exclude")
    fixed = dict(_table(data, "fixed", source))
    recipe = dict(_table(data, "recipe", source))
    axes = dict(_table(data, "axes", source))
    kwargs = {name: dict(_table(_table(data, "architecture_kwargs", source), name, source))
              for name in _table(data, "architecture_kwargs", source)}
    _known(fixed, CONFIG_FIELDS | SWEEP_KEYS, f"{source} [fixed]")
    _known(recipe, RECIPE_FIELDS - {"adversarial", "norm", "eps", "steps"}, f"{source} [recipe]")
    _known(axes, set(AXES), f"{source} [axes]")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise BadInput(f"{source} [axes] {key} = {values!r}: expected a non-empty list")
        if len(set(map(repr, values))) != len(values):
            raise BadInput(f"{source} [axes] {key}: repeated values in {values!r}")
    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(rule, dict) and rule for rule in exclude):
        raise BadInput(f"{source}: exclude must be [[exclude]] tables of axis values, got {exclude!r}")
    for rule in exclude:
        _known(rule, set(axes), f"{source} [[exclude]]")
    overlap = sorted(set(fixed) & set(axes))
    if overlap:
        raise BadInput(f"{source}: {', '.join(overlap)} both fixed and an axis; keep one")
    spec = SweepSpec(fixed={k: v for k, v in fixed.items() if k not in SWEEP_KEYS}, recipe=recipe,
                     axes=axes, architecture_kwargs=kwargs, data_root=fixed.get("data_root"),
                     exclude=tuple(exclude))
    if not spec.settings():  # every point validates now, not halfway through the sweep
        raise BadInput(f"{source}: the axes less the excluded points leave no setting")
    return spec


def _table(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise BadInput(f"{source}: [{key}] must be a table, got {table!r}")
    return table


def _known(table: dict[str, Any], accepted: set[str], where: str) -> None:
    unknown = sorted(set(table) - accepted)
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}")


def training_key(config: Algorithm1Config, role: str) -> str:
    """What a trained model of ``role`` (``normal`` or ``robust``) depends on, hashed: two
    settings with the same key share that model. The normal model depends on the
    architecture, dataset, seed and recipe; the robust one also on the threat model,
    the attack steps and the initialisation (THEORY.md 6, steps 1 and 2)."""
    recipe = config.normal_recipe() if role == "normal" else config.adversarial_recipe()
    identity = {
        "role": role, "architecture": config.architecture,
        "architecture_kwargs": config.architecture_kwargs, "dataset": config.dataset,
        "seed": config.seed, "recipe": recipe.to_dict(),
        **({"init": config.init} if role == "robust" else {}),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{role}-{digest}"
