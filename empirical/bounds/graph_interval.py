"""Interval bound propagation over a traced graph (``fx.GraphModule``), node by node.

Each state node's box comes from its inputs' boxes (THEORY.md section 7's certified bounds;
the node vocabulary is :mod:`semirobust.empirical.bounds.graph_nodes`):

* a module node: that module's interval rule (:mod:`semirobust.empirical.bounds.interval`);
* ``add``: ``[l_1 + l_2, u_1 + u_2]`` (interval addition: sound because both summands are
  enclosed, whatever their dependence, so a residual add needs no declared block);
  ``sub``: ``[l_1 - u_2, u_1 - l_2]``; a value used by several nodes (fan-out) gives each
  the same box;
* ``cat``, reshapes, basic indexing, ``mean``/``sum`` (non-decreasing in every input):
  ``[g(l), g(u)]``; ``neg``: ``[-u, -l]``; multiplication or division by a constant:
  centre ``g(c)``, radius ``|g(r)|``.

Registered as the interval rule of ``fx.GraphModule``, so a traced model is bounded as a
whole model and as a stage of an ``nn.Sequential``.
"""

from __future__ import annotations

from torch import fx

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.graph_nodes import (
    GraphNode,
    GraphProgram,
    ModuleNode,
    graph_program,
)
from semirobust.empirical.bounds.interval import (
    has_interval_rule,
    propagate_interval,
    register_interval_rule,
)

WHAT = "interval bound propagation"


def node_interval(node: GraphNode, boxes: dict[str, Box]) -> Box:
    """The box of ``node``'s value given the boxes of its state inputs."""
    if isinstance(node, ModuleNode):
        return propagate_interval(node.module, boxes[node.inputs[0]])
    return node.interval([boxes[name] for name in node.inputs])


def node_boxes(program: GraphProgram, box: Box) -> dict[str, Box]:
    """The box of every state node for inputs in ``box``."""
    boxes = {program.input: box}
    for node in program.nodes:
        boxes[node.name] = node_interval(node, boxes)
    return boxes


@register_interval_rule(fx.GraphModule)
def graph_interval(module: fx.GraphModule, box: Box) -> Box:
    """The output box of a traced graph for inputs in ``box``."""
    program = graph_program(module, box.lower, has_interval_rule, WHAT)
    return node_boxes(program, box)[program.output]
