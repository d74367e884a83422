"""Any ``nn.Module`` as a network of ordered stages (THEORY.md section 1), cut from its graph.

:func:`as_stages` traces the model (:func:`~semirobust.empirical.model.graph.graph_view`)
and cuts its graph at the split tensor of every valid split: each stage is the graph from
one split tensor to the next, a ``GraphModule`` that shares the model's parameters, so each
holds one counted weight layer (with its normalisation, nonlinearity and pooling) or one
residual block. Each stage declares its counted weight nodes
(:data:`~semirobust.empirical.model.stages.COUNTED_LAYERS_KEY`), functional ``F.linear`` /
``F.conv2d`` calls included and shortcut projections excluded by the counting rules, so the
stage path (:func:`~semirobust.empirical.model.stages.count_weight_layers`,
:func:`~semirobust.empirical.model.stages.split_network`,
:func:`~semirobust.empirical.model.stages.valid_splits`,
:func:`~semirobust.empirical.model.stages.layer_activations`) gives the graph view's counts,
splits and activations, and ``as_stages(model)(x) == model(x)`` exactly: the stages run the
model's operations in the model's order.
"""

from __future__ import annotations

from torch import nn

from semirobust.empirical.model.graph import CountingRules, graph_view
from semirobust.empirical.model.stages import COUNTED_LAYERS_KEY


def as_stages(model: nn.Module, rules: CountingRules = CountingRules()) -> nn.Sequential:  # noqa: B008 (frozen)
    """``model`` as an ``nn.Sequential`` of graph stages cut at its split tensors (module
    docstring); :class:`~semirobust.errors.BadInput` when it cannot be traced."""
    view = graph_view(model, rules)
    cuts = [view.split_nodes[a] for a in view.valid_splits]
    order = {node.name: i for i, node in enumerate(view.nodes)}
    stages = []
    for start, end in zip([None, *cuts], [*cuts, None]):
        stage = view.between(start, end)
        first = -1 if start is None else order[start]
        last = len(view.nodes) if end is None else order[end]
        stage.meta[COUNTED_LAYERS_KEY] = tuple(
            layer.node for layer in view.counted if first < order[layer.node] <= last)
        stages.append(stage)
    return nn.Sequential(*stages)


__all__ = ["as_stages"]
