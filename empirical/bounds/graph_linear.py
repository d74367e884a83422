"""Linear relaxation bounds (CROWN, CROWN-IBP, alpha-CROWN) over a traced graph.

The backward pass of :mod:`semirobust.empirical.bounds.linear` on a DAG of state nodes
(:mod:`semirobust.empirical.bounds.graph_nodes`): to bound ``A . g(h)`` from below, visit
the nodes in reverse execution order carrying one coefficient tensor per node,

* a module node passes its coefficient through that module's backward rule (affine layers
  exactly, ReLU and max-pooling by their relaxations, on the node's input box);
* an affine node ``g(h_1, ..., h_k) = sum_i J_i h_i + c`` passes ``A J_i`` to each input (a
  vector-Jacobian product at 0, one per specification) and adds ``A . c`` to the constant;
* a value used by several nodes (fan-out: a residual block's input feeding its branch and
  its shortcut) receives the *sum* of its users' coefficients before its own rule runs:
  ``sum_u A_u . u(h) = (sum_u A_u J_u) . h + ...`` for affine users, and each relaxation
  is a valid linear bound whatever its coefficient, so the result is a sound lower bound;
  a residual ``add`` is an affine node like any other, so no block is declared by hand.

Intermediate boxes: interval propagation node by node; with ``intermediate="crown"`` the
output of every affine node that feeds a nonlinear node is intersected with this same
backward pass run back to the network's input (only the neurons the interval box leaves
unstable when every nonlinear user is a ReLU whose own users are affine, all neurons
otherwise), the rule of :func:`~semirobust.empirical.bounds.linear.bound_layers` for a
sequence; so is the graph's input when it feeds a nonlinear node and the graph is a later
stage of a sequence (its input is the output of the stage before, as when a stage ends
with a residual add and the next begins with its ReLU). Registered as the structured-layer
rule of ``fx.GraphModule``, so a traced model is bounded whole or as a stage of an
``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import fx, nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.graph_interval import node_interval
from semirobust.empirical.bounds.graph_nodes import (
    AffineNode,
    GraphNode,
    GraphProgram,
    ModuleNode,
    graph_program,
)
from semirobust.empirical.bounds.interval import has_interval_rule
from semirobust.empirical.bounds.linear import (
    CompoundBounds,
    Reach,
    SlopedBox,
    backward_rule_for,
    concretize,
    has_backward_rule,
    register_compound_rule,
    tightened,
)

WHAT = "the linear relaxation (CROWN)"


def _has_rules(module: nn.Module) -> bool:
    return has_interval_rule(module) and has_backward_rule(module)


@dataclass(frozen=True)
class GraphBounds(CompoundBounds):
    """A graph's nodes with what their relaxations read: ``reads[name]``, a module node's
    input box, and ``boxes[name]``, every node's output box."""

    program: GraphProgram
    reads: dict[str, Box]
    boxes: dict[str, Box]

    def pull(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pull_graph(self.program, self.reads, self.program.output, coefficients)

    @property
    def widest(self) -> int:
        return max(box.shape[1:].numel() for box in self.boxes.values())

    def sloped(self, slope: Callable[[Box], SlopedBox]) -> GraphBounds:
        reads = {
            name: slope(box) if isinstance(self.program.by_name[name].module, nn.ReLU) else box
            for name, box in self.reads.items()
        }
        return replace(self, reads=reads)

    def tail_lower(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``min A . g`` with ``A`` carried back only through the affine nodes that end the
        graph and concretised, per node, at the box of each nonlinear node (or the input)
        it reaches: the interval bound of a specification, pushed through the last linear
        layers first (:mod:`semirobust.empirical.bounds.margin`)."""
        pending = {self.program.output: coefficients}
        value = coefficients.new_zeros(coefficients.shape[:2])
        for node in reversed(self.program.nodes):
            incoming = pending.pop(node.name, None)
            if incoming is None:
                continue
            if not node.affine:
                value = value + concretize(
                    incoming, value.new_zeros(value.shape), self.boxes[node.name]
                )
                continue
            pulled, constant = node_backward(self.program, node, incoming, self.reads)
            value = value + constant
            _accumulate(pending, node.inputs, pulled)
        for name, incoming in pending.items():
            value = value + concretize(incoming, value.new_zeros(value.shape), self.boxes[name])
        return value


def _accumulate(pending: dict[str, torch.Tensor], names, pulled) -> None:
    for name, coefficient in zip(names, pulled, strict=True):
        pending[name] = pending[name] + coefficient if name in pending else coefficient


def node_backward(
    program: GraphProgram, node: GraphNode, coefficients: torch.Tensor, reads: dict[str, Box]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The coefficients on each state input of ``node`` and the constant, given the
    coefficients on its output."""
    if isinstance(node, ModuleNode):
        pulled, constant = backward_rule_for(node.module)(
            node.module, coefficients, reads[node.name]
        )
        return [pulled], constant
    return _affine_backward(program, node, coefficients)


def _affine_backward(
    program: GraphProgram, node: AffineNode, coefficients: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``A J_i`` for every input by one vector-Jacobian product per specification (vmapped
    over the specification axis, so shapes read off the batch stay right), and ``A . g(0)``."""
    zeros = [coefficients.new_zeros(program.shapes[name]) for name in node.inputs]
    offset, transpose = torch.func.vjp(node.apply, *zeros)
    pulled = torch.func.vmap(transpose, in_dims=1, out_dims=1)(coefficients)
    constant = (coefficients * offset.unsqueeze(1)).flatten(start_dim=2).sum(dim=2)
    return list(pulled), constant


def pull_graph(
    program: GraphProgram, reads: dict[str, Box], start: str, coefficients: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A_in, c)`` with ``A . v(h) >= A_in . h + c``, ``v`` the value of node ``start`` as a
    function of the graph's input ``h`` (coefficients of fan-out values summed over users)."""
    pending = {start: coefficients}
    constant = coefficients.new_zeros(coefficients.shape[:2])
    position = next(i for i, node in enumerate(program.nodes) if node.name == start)
    for node in reversed(program.nodes[: position + 1]):
        incoming = pending.pop(node.name, None)
        if incoming is None:
            continue
        pulled, offset = node_backward(program, node, incoming, reads)
        constant = constant + offset
        _accumulate(pending, node.inputs, pulled)
    batch, specs = coefficients.shape[:2]
    shape = program.shapes[program.input]
    result = pending.pop(program.input, None)
    if result is None:
        result = coefficients.new_zeros((batch, specs, *shape[1:]))
    return result, constant


def _tightening(program: GraphProgram, name: str) -> bool | None:
    """``None`` when the box of value ``name`` (an affine node's output, or the graph's
    input) is not tightened (no nonlinear user); else whether only its unstable neurons are
    (every nonlinear user a ReLU whose own users are affine: the relaxation then reads
    nothing else of the box)."""
    nonlinear = [program.by_name[u] for u in program.users[name] if not program.by_name[u].affine]
    if not nonlinear:
        return None
    return all(
        isinstance(user, ModuleNode)
        and isinstance(user.module, nn.ReLU)
        and all(program.by_name[w].affine for w in program.users[user.name])
        for user in nonlinear
    )


@register_compound_rule(fx.GraphModule)
def bound_graph(
    module: fx.GraphModule, box: Box, intermediate: str, reach: Reach
) -> tuple[GraphBounds, Box]:
    """What the relaxation of a traced graph reads for inputs in ``box`` (``reach``: the reach
    of its input), and the box of its output."""
    program = graph_program(module, box.lower, _has_rules, WHAT)
    crown = intermediate == "crown"
    if (
        crown
        and not reach.at_input
        and (only_unstable := _tightening(program, program.input)) is not None
    ):
        box = tightened(box, reach, only_unstable)  # the previous stage's output, read nonlinearly
    boxes: dict[str, Box] = {program.input: box}
    reads: dict[str, Box] = {}
    for node in program.nodes:
        if isinstance(node, ModuleNode):
            reads[node.name] = boxes[node.inputs[0]]
        out = node_interval(node, boxes)
        only_unstable = _tightening(program, node.name) if crown and node.affine else None
        if only_unstable is not None:
            widest = max(b.shape[1:].numel() for b in [*boxes.values(), out])
            node_reach = reach.before(partial(pull_graph, program, reads, node.name), widest)
            out = tightened(out, node_reach, only_unstable)
        boxes[node.name] = out
    return GraphBounds(program, reads, boxes), boxes[program.output]
