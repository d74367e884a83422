"""The nodes of a traced model (``torch.fx``) in the vocabulary of the bounds (THEORY.md
sections 5 and 7).

A ``GraphModule``'s nodes whose values depend on the input's values (its *state*, as
:mod:`semirobust.empirical.model.graph` classifies them) are each one of:

* a **module node**: one module applied to one state value, bounded by that module's own
  rules (interval, linear relaxation, Lipschitz). ``call_module`` nodes are these, and so are
  the functions with a module twin, rebuilt as that module around the node's own constant
  arguments: ``F.relu``/``torch.relu``/``.relu()`` (``nn.ReLU``), ``F.max_pool2d``,
  ``F.avg_pool2d``, ``F.adaptive_avg_pool2d``, ``F.linear``/``F.conv2d`` with their weights
  (``get_attr`` constants), ``F.batch_norm`` in eval mode (``training=False``), eval
  ``F.dropout``; an in-place module is used as its out-of-place twin;
* an **affine node**: ``g(h_1, ..., h_k) = sum_i J_i h_i + c`` of its state inputs with
  constants, carrying its own interval rule and the l2 norms ``||J_i||_2`` of its Jacobians:
  ``add``/``sub`` (``operator``, ``torch`` and method forms, in place or not; constants
  included, so ``(x - mean) / std`` is constant normalisation), ``neg``, ``mul``/``div`` by a
  constant, ``cat`` along a feature dimension, the reshapes ``flatten``/``view``/``reshape``/
  ``squeeze``/``unsqueeze``/``contiguous`` and ``transpose``/``permute`` of feature
  dimensions, basic indexing of feature dimensions, and ``mean``/``sum`` over feature
  dimensions (a global average pool written as ``x.mean((2, 3))``).

Values that do not depend on the input's values (parameters, literals, a shape read off a
tensor) are computed once by running the graph on a probe of the bounded batch's shape, so
``x.view(x.size(0), -1)`` is a reshape like any other. Every other state node is
*unsupported*: :func:`graph_program` lists all of them, each as ``name: op target``, in one
:class:`~semirobust.empirical.bounds.layer_rules.UnsupportedLayer` before any bound is
computed.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from semirobust.empirical.bounds.box import Box
from semirobust.empirical.bounds.layer_rules import UnsupportedLayer, is_affine, primitive_layers
from semirobust.empirical.model.graph import STATE, _value_kinds

HasRule = Callable[[nn.Module], bool]


@dataclass(frozen=True)
class ModuleNode:
    """A state node computed by ``module`` from one state input (``inputs[0]``)."""

    name: str
    inputs: tuple[str, ...]
    module: nn.Module
    path: str  # the module's qualified name, or the function node's name
    owner: str  # the innermost non-Sequential module whose forward calls it ("" for the root)

    @property
    def affine(self) -> bool:
        return is_affine(self.module)


@dataclass(frozen=True)
class AffineNode:
    """A state node affine in its state inputs: ``apply(*inputs)`` computes it (constants
    bound), ``interval(boxes)`` encloses it over input boxes, ``norms(shapes)`` are the
    ``||J_i||_2`` per input, combined by ``combine``: ``"sum"`` (triangle inequality) or
    ``"l2"`` (a concatenation: ``sqrt(sum_i (||J_i|| L_i)^2)``)."""

    name: str
    inputs: tuple[str, ...]
    apply: Callable[..., torch.Tensor]
    interval: Callable[[Sequence[Box]], Box]
    norms: Callable[[Sequence[tuple[int, ...]]], list[float]]
    combine: str

    affine = True


GraphNode = ModuleNode | AffineNode


@dataclass(frozen=True)
class GraphProgram:
    """The state nodes of a graph in execution order, for a batch shaped like the probe:
    ``input`` is the placeholder, ``output`` the node the graph returns, ``shapes`` each
    node's value shape (batch included) and ``users`` its state users."""

    input: str
    nodes: tuple[GraphNode, ...]
    output: str
    shapes: dict[str, tuple[int, ...]]
    users: dict[str, tuple[str, ...]]
    by_name: dict[str, GraphNode]


def graph_unsupported(module: fx.GraphModule, has_rule: HasRule) -> list[str]:
    """Every state node of ``module`` that the bounds cannot interpret, as
    ``name: op target`` (``has_rule`` says which modules the propagation knows)."""
    kinds = _value_kinds(tuple(n for n in module.graph.nodes if n.op != "output"))
    modules = dict(module.named_modules())
    problems = []
    for node in module.graph.nodes:
        if node.op in ("placeholder", "output") or kinds.get(node) != STATE:
            continue
        reason = _unsupported_reason(node, modules, kinds, has_rule)
        if reason is not None:
            problems.append(f"{node.name}: {node.op} {_target_name(node, modules)}{reason}")
    return problems


def missing_rules(model: nn.Module, has_rule: HasRule) -> list[str]:
    """Every unsupported node of every traced graph among ``model``'s primitive layers, and
    every other primitive layer without a rule, each as ``name: op target`` (a layer as
    ``Type: no rule for layer type module.Type``), prefixed by its stage in a Sequential."""
    problems = []
    for index, layer in enumerate(primitive_layers(model)):
        prefix = "" if layer is model else f"stage {index} "
        if isinstance(layer, fx.GraphModule):
            problems += [f"{prefix}{entry}" for entry in graph_unsupported(layer, has_rule)]
        elif not has_rule(layer):
            problems.append(
                f"{prefix}{type(layer).__name__}: no rule for layer type "
                f"{type(layer).__module__}.{type(layer).__name__}"
            )
    return problems


def require_rules(model: nn.Module, has_rule: HasRule, what: str) -> None:
    """Before any work: one :class:`UnsupportedLayer` naming everything
    :func:`missing_rules` lists, when ``model`` has traced graphs among its primitive layers
    (a traced model, or an ``nn.Sequential`` with traced stages). A model without traced
    graphs is left to its layers' own rules."""
    if not any(isinstance(layer, fx.GraphModule) for layer in primitive_layers(model)):
        return
    problems = missing_rules(model, has_rule)
    if problems:
        raise UnsupportedLayer(
            f"{what} has no rule for {len(problems)} graph node(s) or layer(s): "
            f"{'; '.join(problems)}"
        )


def graph_program(
    module: fx.GraphModule, probe: torch.Tensor, has_rule: HasRule, what: str
) -> GraphProgram:
    """The interpretable form of ``module`` for inputs shaped like ``probe``; one
    :class:`UnsupportedLayer` naming every unsupported node (``what`` names the propagation)."""
    problems = graph_unsupported(module, has_rule)
    placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        problems.append(f"{len(placeholders)} inputs: the bounds need exactly one")
    if problems:
        raise UnsupportedLayer(
            f"{what} has no rule for {len(problems)} graph node(s): {'; '.join(problems)}"
        )
    values = _probe_values(module, probe)
    kinds = _value_kinds(tuple(n for n in module.graph.nodes if n.op != "output"))
    modules = dict(module.named_modules())
    output = module.graph.output_node().args[0]
    if not isinstance(output, fx.Node) or kinds.get(output) != STATE:
        raise UnsupportedLayer(f"{what}: the graph must return one tensor computed from its input")
    nodes, users = [], {}
    for node in module.graph.nodes:
        if node.op == "output" or kinds.get(node) != STATE:
            continue
        users[node.name] = tuple(u.name for u in node.users if kinds.get(u) == STATE)
        if node.op != "placeholder":
            nodes.append(_interpret(node, modules, kinds, values))
    shapes = {
        n.name: tuple(values[n].shape)
        for n in module.graph.nodes
        if n.op != "output" and kinds.get(n) == STATE
    }
    return GraphProgram(
        placeholders[0].name,
        tuple(nodes),
        output.name,
        shapes,
        users,
        {node.name: node for node in nodes},
    )


# ---- which nodes are supported -----------------------------------------------------------

ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_"}
MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
DIV = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_"}
NEG = {operator.neg, torch.neg, "neg"}
CAT = {torch.cat, torch.concat}
RESHAPE = {
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    "flatten",
    "view",
    "reshape",
    "squeeze",
    "unsqueeze",
    "contiguous",
}
TRANSPOSE = {torch.transpose, torch.permute, "transpose", "permute"}
REDUCE = {torch.mean: "mean", "mean": "mean", torch.sum: "sum", "sum": "sum"}
RELU = {F.relu, torch.relu, torch.relu_, "relu", "relu_"}
MODULE_FUNCTIONS = {
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.linear,
    F.conv2d,
    F.batch_norm,
    F.dropout,
}


def _is(node: fx.Node, family: set | dict) -> bool:
    return node.op in ("call_function", "call_method") and node.target in family


def _target_name(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[node.target]).__name__})"
    if node.op == "call_method":
        return f".{node.target}()"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    return f"{module}.{name}" if module and module not in ("_operator", "builtins") else name


def _state_args(node: fx.Node, kinds: dict[fx.Node, str]) -> list[fx.Node]:
    return [p for p in node.all_input_nodes if kinds.get(p) == STATE]


def _unsupported_reason(
    node: fx.Node, modules: dict[str, nn.Module], kinds: dict[fx.Node, str], has_rule: HasRule
) -> str | None:
    """``None`` if the node is interpretable, else "" or a short reason in parentheses."""
    states = _state_args(node, kinds)
    if node.op == "call_module":
        if len(states) != 1:
            return " (a module of several state inputs)"
        return None if has_rule(modules[node.target]) else ""
    if node.op == "get_attr":
        return ""
    if _is(node, RELU):
        return None if len(states) == 1 else ""
    if node.op == "call_function" and node.target in MODULE_FUNCTIONS:
        if states != [node.args[0]] or (
            node.target in (F.batch_norm, F.dropout) and _training(node)
        ):
            return " (in training mode)" if _training(node) else " (state in a constant argument)"
        return None
    if _is(node, ADD) or _is(node, SUB):
        return None if not node.kwargs else " (keyword arguments)"
    if _is(node, MUL) or _is(node, DIV):
        first_is_state = isinstance(node.args[0], fx.Node) and kinds.get(node.args[0]) == STATE
        if (
            node.kwargs
            or len(states) != 1
            or _occurrences(node, states[0]) != 1
            or (_is(node, DIV) and not first_is_state)
        ):
            return " (a product or quotient of input-dependent values)"
        return None
    if _is(node, NEG):
        return None
    if _is(node, CAT):
        return None if _cat_dim(node) != 0 else " (along the batch dimension)"
    if _is(node, RESHAPE) or _is(node, TRANSPOSE):
        return (
            None if len(states) == 1 and not _moves_batch(node) else " (moves the batch dimension)"
        )
    if _is(node, REDUCE):
        return (
            None
            if len(states) == 1 and _reduced_dims(node) is not None
            else " (reduces over the batch dimension)"
        )
    if node.op == "call_function" and node.target is operator.getitem:
        return (
            None
            if len(states) == 1 and _basic_feature_index(node.args[1])
            else " (an index that is not basic slicing of feature dimensions)"
        )
    return ""


def _training(node: fx.Node) -> bool:
    if node.target is F.batch_norm:
        return bool(_argument(node, 5, "training", False))
    return bool(_argument(node, 2, "training", True)) and _argument(node, 1, "p", 0.5) != 0


def _argument(node: fx.Node, index: int, name: str, default):
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[index] if len(node.args) > index else default


def _cat_dim(node: fx.Node) -> int:
    return int(_argument(node, 1, "dim", 0))


def _moves_batch(node: fx.Node) -> bool:
    target = node.target
    if target in (torch.transpose, "transpose"):
        dims = [_argument(node, 1, "dim0", 0), _argument(node, 2, "dim1", 1)]
        return any(not isinstance(d, int) or d == 0 for d in dims)
    if target in (torch.permute, "permute"):
        dims = (
            node.args[1]
            if len(node.args) == 2 and isinstance(node.args[1], (tuple, list))
            else node.args[1:]
        )
        return not dims or dims[0] != 0
    if target in (torch.flatten, "flatten"):
        return _argument(node, 1, "start_dim", 0) == 0
    if target in (torch.squeeze, torch.unsqueeze, "squeeze", "unsqueeze"):
        return _argument(node, 1, "dim", None) in (None, 0)
    return False  # view / reshape / contiguous: checked on the probe's shapes


def _reduced_dims(node: fx.Node) -> tuple[int, ...] | None:
    dims = _argument(node, 1, "dim", None)
    if dims is None:
        return None
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return dims if all(isinstance(d, int) and d != 0 for d in dims) else None


def _basic_feature_index(index) -> bool:
    """Basic indexing (integers, slices, ``None``, ``...``) that keeps the batch dimension."""
    items = index if isinstance(index, tuple) else (index,)
    basic = all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)
    return basic and bool(items) and (items[0] is Ellipsis or items[0] == slice(None))


def _occurrences(node: fx.Node, value: fx.Node) -> int:
    """How many times ``value`` is an argument of ``node``."""
    seen: list[fx.Node] = []
    fx.map_arg((node.args, node.kwargs), lambda n: seen.append(n) or n)
    return sum(n is value for n in seen)


# ---- interpretation ----------------------------------------------------------------------


class _Probe(fx.Interpreter):
    """Runs the graph once on a probe, keeping every node's value (shapes and constants)."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[fx.Node, object] = {}

    def run_node(self, node: fx.Node):
        value = super().run_node(node)
        self.values[node] = value.clone() if isinstance(value, torch.Tensor) else value
        return value


def _probe_values(module: fx.GraphModule, probe: torch.Tensor) -> dict[fx.Node, object]:
    recorder = _Probe(module)
    with torch.no_grad():
        recorder.run(probe.clone())
    return recorder.values


def _owner(node: fx.Node) -> str:
    stack = list(node.meta.get("nn_module_stack", {}).values())
    if node.op == "call_module" and stack and stack[-1][0] == node.target:
        stack = stack[:-1]
    owners = [
        path
        for path, kind in stack
        if not (isinstance(kind, type) and issubclass(kind, nn.Sequential))
    ]
    return owners[-1] if owners else ""


def _out_of_place(module: nn.Module) -> nn.Module:
    if getattr(module, "inplace", False):
        module = copy.copy(module)
        module.inplace = False
    return module


def _interpret(
    node: fx.Node,
    modules: dict[str, nn.Module],
    kinds: dict[fx.Node, str],
    values: dict[fx.Node, object],
) -> GraphNode:
    inputs = tuple(p.name for p in _state_args(node, kinds))
    if node.op == "call_module":
        module = _out_of_place(modules[node.target])
        return ModuleNode(node.name, inputs, module, str(node.target), _owner(node))
    if _is(node, RELU) or (node.op == "call_function" and node.target in MODULE_FUNCTIONS):
        return ModuleNode(node.name, inputs, _module_twin(node, values), node.name, _owner(node))
    return _affine(node, inputs, kinds, values)


def _resolver(node: fx.Node, values: dict[fx.Node, object]):
    """``arg(position, name, default)``: the node's argument, its probed value if a node."""

    def arg(position: int, name: str, default):
        value = _argument(node, position, name, default)
        return values[value] if isinstance(value, fx.Node) else value

    return arg


def _module_twin(node: fx.Node, values: dict[fx.Node, object]) -> nn.Module:
    """The module computing what the function node computes, around its constants."""
    arg = _resolver(node, values)
    target = node.target
    if _is(node, RELU):
        return nn.ReLU()
    if target is F.max_pool2d:
        return nn.MaxPool2d(
            arg(1, "kernel_size", None),
            arg(2, "stride", None),
            arg(3, "padding", 0),
            arg(4, "dilation", 1),
            ceil_mode=bool(arg(5, "ceil_mode", False)),
        )
    if target is F.avg_pool2d:
        return nn.AvgPool2d(
            arg(1, "kernel_size", None),
            arg(2, "stride", None),
            arg(3, "padding", 0),
            bool(arg(4, "ceil_mode", False)),
            bool(arg(5, "count_include_pad", True)),
            arg(6, "divisor_override", None),
        )
    if target is F.adaptive_avg_pool2d:
        return nn.AdaptiveAvgPool2d(arg(1, "output_size", None))
    if target is F.dropout:
        return nn.Identity()
    if target is F.linear:
        weight, bias = arg(1, "weight", None), arg(2, "bias", None)
        layer = nn.Linear(
            weight.shape[1],
            weight.shape[0],
            bias=bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        return _with_tensors(layer, weight=weight, bias=bias)
    if target is F.conv2d:
        weight, bias = arg(1, "weight", None), arg(2, "bias", None)
        groups = arg(6, "groups", 1)
        layer = nn.Conv2d(
            weight.shape[1] * groups,
            weight.shape[0],
            tuple(weight.shape[2:]),
            arg(3, "stride", 1),
            arg(4, "padding", 0),
            arg(5, "dilation", 1),
            groups,
            bias=bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        return _with_tensors(layer, weight=weight, bias=bias)
    # F.batch_norm in eval mode
    mean, var = arg(1, "running_mean", None), arg(2, "running_var", None)
    weight, bias = arg(3, "weight", None), arg(4, "bias", None)
    kind = nn.BatchNorm2d if values[node.args[0]].dim() == 4 else nn.BatchNorm1d
    layer = kind(
        mean.shape[0],
        eps=float(arg(7, "eps", 1e-5)),
        affine=weight is not None,
        dtype=mean.dtype,
        device=mean.device,
    ).eval()
    layer.running_mean, layer.running_var = mean, var
    return _with_tensors(layer, weight=weight, bias=bias)


def _with_tensors(layer: nn.Module, **tensors: torch.Tensor | None) -> nn.Module:
    for name, tensor in tensors.items():
        if tensor is not None:
            setattr(layer, name, nn.Parameter(tensor.detach(), requires_grad=False))
    return layer


def _evaluator(
    node: fx.Node, inputs: tuple[str, ...], values: dict[fx.Node, object], target=None
) -> Callable[..., torch.Tensor]:
    """``apply(*states)``: the node's operation with its state arguments replaced (in
    ``inputs`` order) and every other argument its probed value; in-place forms run out of
    place (``target`` overrides the operation)."""
    operation = target if target is not None else node.target

    def apply(*states: torch.Tensor) -> torch.Tensor:
        given = dict(zip(inputs, states, strict=True))

        def value(n: fx.Node):
            return given[n.name] if n.name in given else values[n]

        args = fx.map_arg(node.args, value)
        kwargs = fx.map_arg(node.kwargs, value)
        if node.op == "call_method":
            return getattr(args[0], operation)(*args[1:], **kwargs)
        return operation(*args, **kwargs)

    return apply


_OUT_OF_PLACE = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
    "add_": "add",
    "sub_": "sub",
    "mul_": "mul",
    "div_": "div",
}


def _affine(
    node: fx.Node, inputs: tuple[str, ...], kinds: dict[fx.Node, str], values: dict[fx.Node, object]
) -> AffineNode:
    apply = _evaluator(node, inputs, values, _OUT_OF_PLACE.get(node.target))
    shape_in = [tuple(values[_node_named(node, name)].shape) for name in inputs]
    out_shape = tuple(values[node].shape)
    if (_is(node, RESHAPE) or _is(node, TRANSPOSE) or node.target is operator.getitem) and (
        not out_shape or out_shape[0] != shape_in[0][0]
    ):
        raise UnsupportedLayer(f"{node.name}: {node.op} {node.target} mixes samples of the batch")

    def monotone(boxes: Sequence[Box]) -> Box:
        return Box(apply(*(b.lower for b in boxes)), apply(*(b.upper for b in boxes)))

    uses = [_occurrences(node, _node_named(node, name)) for name in inputs]

    def broadcast_norms(shapes: Sequence[tuple[int, ...]]) -> list[float]:
        # a summand used k times and broadcast to the output (each of its values repeated
        # m times) has ||J|| <= k sqrt(m)
        return [
            k * math.sqrt(math.prod(out_shape[1:]) / math.prod(s[1:]))
            for k, s in zip(uses, shapes, strict=True)
        ]

    def unit_norms(shapes: Sequence[tuple[int, ...]]) -> list[float]:
        # reordered or selected coordinates, an input used k times: ||J|| = sqrt(k) per input
        # in a concatenation (combined in l2), <= k otherwise
        return [math.sqrt(k) if _is(node, CAT) else float(k) for k in uses]

    if _is(node, ADD):
        return AffineNode(node.name, inputs, apply, monotone, broadcast_norms, "sum")
    if _is(node, SUB):
        negated = [_position(node, name) == 1 for name in inputs]

        def difference(boxes: Sequence[Box]) -> Box:
            low = [b.upper if neg else b.lower for b, neg in zip(boxes, negated, strict=True)]
            high = [b.lower if neg else b.upper for b, neg in zip(boxes, negated, strict=True)]
            return Box(apply(*low), apply(*high))

        return AffineNode(node.name, inputs, apply, difference, broadcast_norms, "sum")
    if _is(node, NEG):
        return AffineNode(
            node.name,
            inputs,
            apply,
            lambda boxes: Box(apply(boxes[0].upper), apply(boxes[0].lower)),
            unit_norms,
            "sum",
        )
    if _is(node, MUL) or _is(node, DIV):
        probe = values[_node_named(node, inputs[0])]
        scale = float(apply(torch.ones_like(probe)).abs().max())
        multiplicity = broadcast_norms(shape_in)[0]

        def scaled(boxes: Sequence[Box]) -> Box:
            centre, radius = apply(boxes[0].centre), apply(boxes[0].radius).abs()
            return Box(centre - radius, centre + radius)

        return AffineNode(
            node.name,
            inputs,
            apply,
            scaled,
            lambda shapes: [scale * multiplicity],
            "sum",
        )
    if _is(node, CAT):
        return AffineNode(node.name, inputs, apply, monotone, unit_norms, "l2")
    if _is(node, REDUCE):
        kind = REDUCE[node.target]
        count = math.prod(shape_in[0][1:]) / math.prod(out_shape[1:])
        norm = 1 / math.sqrt(count) if kind == "mean" else math.sqrt(count)
        return AffineNode(
            node.name,
            inputs,
            apply,
            monotone,
            lambda shapes: [norm],
            "sum",
        )
    # reshapes, transposes and basic indexing: coordinates selected or reordered
    return AffineNode(node.name, inputs, apply, monotone, unit_norms, "sum")


def _node_named(node: fx.Node, name: str) -> fx.Node:
    return next(p for p in node.all_input_nodes if p.name == name)


def _position(node: fx.Node, name: str) -> int:
    return next(i for i, a in enumerate(node.args) if isinstance(a, fx.Node) and a.name == name)
