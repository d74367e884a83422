"""The certified l2 Lipschitz bound of a traced graph (THEORY.md section 5), over its DAG.

For the value ``v`` of each state node as a function of the graph's input ``x``, an upper
bound ``L(v)`` of its l2 -> l2 Lipschitz constant, from its inputs' (``L(x) = 1``):

* a module node ``op(u)``: ``L(v) <= L_op L(u)``, ``L_op`` that module's Lipschitz factor
  (:mod:`semirobust.empirical.bounds.lipschitz`: operator norms, 1 for ReLU, ``sqrt(M)``
  for overlapping max pools); a BatchNorm that is a conv's (or linear layer's) only user,
  called from the same module's ``forward``, is folded into it (one factor for the pair,
  the stage path's rule: a block is never folded into from outside);
* an affine node of several inputs (``add``, ``sub``): ``L(v) <= sum_i ||J_i|| L(u_i)`` by
  the triangle inequality (``||J_i|| = 1`` for a plain residual add, a value used ``k``
  times or broadcast to ``m`` copies of each entry counts ``k sqrt(m)``), so a residual
  block ``relu(branch(h) + h)`` gets ``L(branch) + 1``;
* ``cat(u_1, ..., u_k)``: ``L(v) <= sqrt(sum_i L(u_i)^2)`` in l2, since
  ``||(du_1, ..., du_k)||_2^2 = sum_i ||du_i||_2^2 <= sum_i L(u_i)^2 ||dx||_2^2``;
* reshapes and basic indexing: ``L(v) <= L(u)``; ``mean`` of ``n`` values ``L(u)/sqrt(n)``,
  ``sum`` ``sqrt(n) L(u)``; multiplication or division by a constant ``max |factor|``.

A value used by several nodes (fan-out) enters each with its own ``L(u)``; the bound is
``L(output)``, one factor for the whole graph (a stage of an ``nn.Sequential`` gives one
factor per stage). It is certified when every module factor is (no power iteration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import fx, nn

from semirobust.empirical.bounds.graph_nodes import GraphProgram, ModuleNode, graph_program
from semirobust.empirical.bounds.layer_rules import BATCH_NORM_TYPES
from semirobust.empirical.bounds.lipschitz import (
    LayerItem,
    LayerLipschitz,
    OperatorNormSettings,
    has_lipschitz_rule,
    lipschitz_rule_for,
    register_lipschitz_rule,
)
from semirobust.empirical.model.stages import declared_weight_layers

WHAT = "the Lipschitz bound"


def _folded(program: GraphProgram) -> dict[str, str]:
    """BatchNorm node -> the conv/linear node folded into it."""
    pairs = {}
    for node in program.nodes:
        users = program.users[node.name]
        if (
            isinstance(node, ModuleNode)
            and isinstance(node.module, (nn.Conv2d, nn.Linear))
            and len(users) == 1
            and node.name != program.output
        ):
            user = program.by_name[users[0]]
            if (
                isinstance(user, ModuleNode)
                and isinstance(user.module, BATCH_NORM_TYPES)
                and user.owner == node.owner
            ):
                pairs[user.name] = node.name
    return pairs


def graph_factors(
    program: GraphProgram, settings: OperatorNormSettings
) -> tuple[dict[str, float], list[LayerLipschitz]]:
    """``L(v)`` of every state node, and the module factors used."""
    bounds = {program.input: 1.0}
    factors: list[LayerLipschitz] = []
    folded = _folded(program)
    skipped = set(folded.values())

    def item(node: ModuleNode) -> LayerItem:
        return node.path, node.module, program.shapes[node.inputs[0]][1:]

    for node in program.nodes:
        if node.name in skipped:
            continue
        if isinstance(node, ModuleNode):
            group, source = [item(node)], node.inputs[0]
            if node.name in folded:
                conv = program.by_name[folded[node.name]]
                group, source = [item(conv), item(node)], conv.inputs[0]
            factor = lipschitz_rule_for(group[0][1])(group, settings)
            factors.append(factor)
            bounds[node.name] = factor.bound * bounds[source]
            continue
        norms = node.norms([program.shapes[name] for name in node.inputs])
        terms = [norm * bounds[name] for norm, name in zip(norms, node.inputs, strict=True)]
        bounds[node.name] = (
            math.sqrt(sum(t * t for t in terms)) if node.combine == "l2" else sum(terms)
        )
    return bounds, factors


def _label(module: fx.GraphModule) -> str:
    """``GraphModule``, with the counted weight layers a graph stage declares (their modules'
    names, or the function nodes' names), e.g. ``GraphModule (layer1.0.conv1, layer1.0.conv2)``."""
    declared = declared_weight_layers(module)
    if not declared:
        return type(module).__name__
    nodes = {node.name: node for node in module.graph.nodes}
    names = [str(nodes[name].target) if nodes[name].op == "call_module" else name for name in declared]
    return f"{type(module).__name__} ({', '.join(names)})"


@register_lipschitz_rule(fx.GraphModule)
def graph_lipschitz(items: Sequence[LayerItem], settings: OperatorNormSettings) -> LayerLipschitz:
    """One factor for a traced graph: ``L(output)`` over its DAG (module docstring)."""
    path, module, input_shape = items[0]
    reference = next(iter([*module.parameters(), *module.buffers()]), None)
    probe = torch.zeros(
        (1, *input_shape),
        dtype=torch.float64,
        device=reference.device if reference is not None else "cpu",
    )
    program = graph_program(module, probe, has_lipschitz_rule, WHAT)
    bounds, factors = graph_factors(program, settings)
    folds = sum("+" in factor.path for factor in factors)
    method = (
        f"graph: {len(factors)} module factors ({folds} BatchNorms folded) combined over the DAG, "
        "L(op u) <= L_op L(u), L(u + v) <= L(u) + L(v), L(cat) <= sqrt(sum L^2)"
    )
    return LayerLipschitz(
        path,
        _label(module),
        bounds[program.output],
        method,
        all(factor.certified for factor in factors),
    )
