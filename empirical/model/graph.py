"""Any ``nn.Module`` as a graph of weight layers and split points (THEORY.md section 1).

The model is traced symbolically (``torch.fx``) into a graph in execution order. On it:

* **weight layers** are the conv and linear operations (modules, or ``F.linear`` /
  ``F.conv*`` calls), in execution order; a *counted* weight layer is one of the paper's
  ``f^(j)``. Counting rules (:class:`CountingRules`): a module marked with
  :func:`~semirobust.empirical.model.stages.mark_not_counted` or named in ``not_counted``
  is never counted, and (``skip_shortcuts``) neither is a weight layer off the longest
  path of its residual region, so a shortcut's 1x1 projection is not counted and
  ResNet-18 has 18 layers;
* a **cut** is a node after which its own output is the only value the rest of the
  network still needs (values computed from parameters alone can be recomputed and do not
  count; a shape read off a tensor does): the whole state flows through one tensor.
  A split after layer ``a`` is **valid** when a cut lies between counted layers ``a`` and
  ``a + 1``, so a split never cuts a residual block. The split tensor starts from the end
  of layer ``a``: the output of the outermost module that holds it but not layer ``a + 1``
  (its residual block or stage: module boundaries decide where a pre-activation block
  begins), or, for a layer written directly in its parent's ``forward``, the end of its
  chain of unary operations (normalisation, nonlinearity, pooling). From there: the first
  cut, carried on through operations that reshape it or combine it with constants (a class
  token, a position embedding) while it stays a cut, less trailing reshapes (a ``flatten``
  belongs to the layer that needs it);
* ``f_a`` and ``f_b`` are the graph up to the split tensor and the graph after it, as
  ``GraphModule``s that share the model's parameters: ``f_b(f_a(x)) == model(x)``
  exactly (the same operations in the same order);
* the **activation** ``h_j`` of counted layer ``j`` is the split tensor after it when
  its region (between consecutive split tensors) holds only that layer, and the weight
  operation's own output inside a region with several (a residual block), the same rule
  as the stage path of :mod:`semirobust.empirical.model.stages`.

A model whose ``forward`` branches on tensor values cannot be traced; :func:`trace_model`
names the offending source line in one :class:`BadInput` line.
"""

from __future__ import annotations

import linecache
import operator
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

import torch
from torch import fx, nn
from torch.nn import functional

from semirobust.empirical.model.normalize import Normalize
from semirobust.empirical.model.stages import NOT_COUNTED_ATTRIBUTE, record_nodes
from semirobust.errors import BadInput

WEIGHT_MODULE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
WEIGHT_FUNCTIONS = frozenset({functional.linear, functional.conv1d, functional.conv2d,
                              functional.conv3d, torch.conv1d, torch.conv2d, torch.conv3d})
#: Operations of one tensor that belong to the weight layer before them (THEORY.md 1: a layer
#: is its weight operation with its normalisation, nonlinearity and pooling).
UNARY_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.ReLU,
    nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.Softplus, nn.Dropout,
    nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
)
UNARY_FUNCTIONS = frozenset({
    functional.relu, torch.relu, functional.gelu, functional.silu, torch.tanh, torch.sigmoid,
    functional.leaky_relu, functional.elu, functional.dropout, functional.max_pool2d,
    functional.avg_pool2d, functional.adaptive_avg_pool2d, functional.batch_norm,
    functional.layer_norm,
})
UNARY_METHODS = frozenset({"relu", "sigmoid", "tanh"})
#: Operations that only rearrange one tensor's values.
SHAPE_FUNCTIONS = frozenset({torch.flatten, torch.reshape, torch.transpose, torch.permute,
                             torch.squeeze, torch.unsqueeze})
SHAPE_METHODS = frozenset({"flatten", "view", "reshape", "transpose", "permute", "contiguous",
                           "squeeze", "unsqueeze"})
#: Operations that combine one tensor with constants (a class token, a position embedding).
COMBINING_FUNCTIONS = frozenset({operator.add, operator.sub, operator.mul, operator.truediv,
                                 torch.add, torch.sub, torch.mul, torch.div, torch.cat})
COMBINING_METHODS = frozenset({"add", "sub", "mul", "div"})
#: Reads of a tensor's metadata: their values depend on shapes, not on the input's values.
METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim"})
METADATA_METHODS = frozenset({"size", "dim"})


@dataclass(frozen=True)
class CountingRules:
    """Which weight layers are the paper's ``f^(j)`` (THEORY.md section 1).

    ``skip_shortcuts``: a weight layer off the longest path (in counted layers) through its
    residual region is a shortcut projection and is not counted. ``not_counted``: qualified
    module names (``model.named_modules()``) never counted."""

    skip_shortcuts: bool = True
    not_counted: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class WeightLayer:
    """One conv or linear operation of the graph."""

    node: str  # the fx node's name
    target: str  # the module's qualified name, or the function's name
    operation: str  # e.g. "Conv2d", "linear"
    counted: bool


class SemirobustTracer(fx.Tracer):
    """``torch.fx`` tracing that keeps :class:`Normalize` whole (its ``forward`` branches on
    the input's rank, a Python-level choice, not a tensor value)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, Normalize) or super().is_leaf_module(module, qualified_name)


def trace_model(model: nn.Module) -> fx.GraphModule:
    """The model as an ``fx.GraphModule``; :class:`BadInput` naming the source line of a
    ``forward`` that cannot be traced (e.g. branching on a tensor's value).

    A model that already is a ``GraphModule`` (a traced model, a graph stage) is its own
    graph and is returned as it is: tracing its generated ``forward`` again would lose the
    module stack of its function nodes (``nn_module_stack``, which modules' ``forward``
    created them), and with it the module boundaries that place the split tensors."""
    if isinstance(model, fx.GraphModule):
        return model
    try:
        graph = SemirobustTracer().trace(model)
    except Exception as error:  # noqa: BLE001  (tracing runs user code: any failure is the model's)
        raise BadInput(f"model {type(model).__name__} cannot be traced by torch.fx: "
                       f"{_first_line(error)}{_user_location(error)}") from None
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _user_location(error: Exception) -> str:
    """`` at FILE:LINE: CODE`` for the innermost frame outside torch, if any."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "/torch/" not in f.filename and f.filename != __file__]
    if not frames:
        return ""
    frame = frames[-1]
    code = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f" at {frame.filename}:{frame.lineno}: {code}"


@dataclass(frozen=True)
class GraphView:
    """A traced model with its weight layers, cuts and valid splits (module docstring)."""

    module: fx.GraphModule
    nodes: tuple[fx.Node, ...]  # every node but the output, in execution order
    weight_layers: tuple[WeightLayer, ...]
    split_nodes: dict[int, str]  # a -> the node whose output is the split tensor after layer a
    kinds: dict[fx.Node, str]  # each node's value: state, metadata or constant

    @property
    def counted(self) -> list[WeightLayer]:
        return [layer for layer in self.weight_layers if layer.counted]

    @property
    def n(self) -> int:
        """The number of counted weight layers."""
        return len(self.counted)

    @property
    def valid_splits(self) -> list[int]:
        return sorted(self.split_nodes)

    def require_split(self, a: int) -> str:
        """The split node after counted layer ``a``, or :class:`BadInput` saying why not."""
        if not isinstance(a, int) or not 1 <= a <= self.n - 1:
            raise BadInput(
                f"split --split {a} is outside the network: f_a must hold 1..{self.n - 1} of its "
                f"{self.n} weight layers (f_b at least one)"
            )
        if a not in self.split_nodes:
            raise BadInput(
                f"split --split {a} would cut a residual block (no single tensor carries the "
                f"state after weight layer {a}, {self.counted[a - 1].target}); valid splits: "
                f"{', '.join(map(str, self.valid_splits))}"
            )
        return self.split_nodes[a]

    def split(self, a: int) -> tuple[fx.GraphModule, fx.GraphModule]:
        """``(f_a, f_b)`` with ``f_b(f_a(x)) == model(x)``; both share the model's parameters."""
        cut = self.require_split(a)
        return self.between(None, cut), self.between(cut, None)

    def between(self, start: str | None, end: str | None) -> fx.GraphModule:
        """The graph from the value of node ``start`` (None: the model's input) to the value of
        node ``end`` (None: the model's output), as a ``GraphModule`` sharing the model's
        parameters; ``start`` and ``end`` are cuts (a split node, say)."""
        position = {node.name: i for i, node in enumerate(self.nodes)}
        first = 0 if start is None else position[start] + 1
        last = len(self.nodes) - 1 if end is None else position[end]
        return self._subgraph(self.nodes[first: last + 1],
                              inputs=None if start is None else self.nodes[position[start]],
                              output=None if end is None else self.nodes[last])

    def _subgraph(self, nodes: Iterable[fx.Node], *, inputs: fx.Node | None,
                  output: fx.Node | None) -> fx.GraphModule:
        graph = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        if inputs is not None:
            env[inputs] = graph.placeholder(inputs.name)

        def mapped(node: fx.Node) -> fx.Node:
            if node not in env:  # a constant computed before the cut and used after it
                if self.kinds[node] != CONSTANT:
                    raise AssertionError(f"{node.name} crosses the cut")
                env[node] = graph.node_copy(node, mapped)
            return env[node]

        for node in nodes:
            env[node] = graph.node_copy(node, mapped)
        final = output if output is not None else self.module.graph.output_node().args[0]
        graph.output(fx.map_arg(final, mapped))
        return fx.GraphModule(self.module, graph)

    def activations(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``h_j`` for every counted layer (flattened per sample) and the model's output."""
        values, output = record_nodes(self.module, self._activation_nodes(), x)
        return [value.flatten(start_dim=1) for value in values], output

    def _activation_nodes(self) -> list[str]:
        order = {node.name: i for i, node in enumerate(self.nodes)}
        boundaries = [order[self.split_nodes[a]] for a in self.valid_splits]
        names = []
        for j, layer in enumerate(self.counted, start=1):
            start = max([b for b in boundaries if b < order[layer.node]], default=-1)
            end = min([b for b in boundaries if b >= order[layer.node]], default=len(self.nodes) - 1)
            alone = sum(start < order[other.node] <= end for other in self.counted) == 1
            names.append(self.nodes[end].name if alone else layer.node)
        return names


def graph_view(model: nn.Module, rules: CountingRules = CountingRules()) -> GraphView:
    """Trace ``model`` and find its weight layers, cuts and valid splits (module docstring)."""
    module = trace_model(model)
    nodes = tuple(n for n in module.graph.nodes if n.op != "output")
    modules = dict(module.named_modules())
    weights = [n for n in nodes if _is_weight(n, modules)]
    counted = {n: not _excluded(n, modules, rules) for n in weights}
    kinds = _value_kinds(nodes)
    cuts = _cuts(nodes, kinds)
    if rules.skip_shortcuts:
        counted = _longest_path_only(nodes, cuts, counted)
    layers = tuple(WeightLayer(n.name, str(n.target) if n.op == "call_module" else n.target.__name__,
                               type(modules[n.target]).__name__ if n.op == "call_module" else n.target.__name__,
                               counted[n]) for n in weights)
    order = {n: i for i, n in enumerate(nodes)}
    counted_nodes = [n for n in weights if counted[n]]
    cut_positions = set(cuts)
    split_nodes = {}
    for a, (this, following) in enumerate(pairwise(counted_nodes), start=1):
        start = order[_end_of_layer(this, following, nodes, modules, kinds)]
        first = next((i for i in cuts if start <= i < order[following]), None)
        if first is not None:
            split = _carry_split(nodes[first], order[following], order, cut_positions, kinds)
            split_nodes[a] = split.name
    return GraphView(module, nodes, layers, split_nodes, kinds)


def _is_weight(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], WEIGHT_MODULE_TYPES)
    return node.op == "call_function" and node.target in WEIGHT_FUNCTIONS


def _excluded(node: fx.Node, modules: dict[str, nn.Module], rules: CountingRules) -> bool:
    if node.op != "call_module":
        return False
    return node.target in rules.not_counted or getattr(modules[node.target], NOT_COUNTED_ATTRIBUTE, False)


def _is_unary(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], UNARY_MODULE_TYPES)
    if node.op == "call_function":
        return node.target in UNARY_FUNCTIONS
    return node.op == "call_method" and node.target in UNARY_METHODS


STATE, METADATA, CONSTANT = "state", "metadata", "constant"


def _value_kinds(nodes: tuple[fx.Node, ...]) -> dict[fx.Node, str]:
    """Each node's value: ``state`` (depends on the input's values), ``metadata`` (depends on
    the input only through its shape) or ``constant`` (parameters and literals only)."""
    kinds: dict[fx.Node, str] = {}
    for node in nodes:
        inputs = {kinds.get(p, CONSTANT) for p in node.all_input_nodes}
        if node.op == "placeholder":
            kinds[node] = STATE
        elif STATE in inputs:
            kinds[node] = METADATA if _reads_metadata(node) else STATE
        else:
            kinds[node] = METADATA if METADATA in inputs else CONSTANT
    return kinds


def _reads_metadata(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in METADATA_METHODS
    return node.op == "call_function" and node.target is getattr and node.args[1] in METADATA_ATTRIBUTES


def _state_inputs(node: fx.Node, kinds: dict[fx.Node, str]) -> list[fx.Node]:
    return [p for p in node.all_input_nodes if kinds.get(p) == STATE]


def _state_users(node: fx.Node, kinds: dict[fx.Node, str]) -> list[fx.Node]:
    return [u for u in node.users if kinds.get(u) == STATE]


def _unary_chain_end(node: fx.Node, modules: dict[str, nn.Module], kinds: dict[fx.Node, str]) -> fx.Node:
    """Follow the single user of ``node`` while it is a unary operation of it alone."""
    while len(users := _state_users(node, kinds)) == 1 and len(node.users) == 1:
        (user,) = users
        if not (_is_unary(user, modules) and _state_inputs(user, kinds) == [node]):
            break
        node = user
    return node


def _module_path(node: fx.Node) -> list[str]:
    """The qualified names of the modules whose ``forward`` created ``node``, outermost first."""
    return [name.split("@")[0] for name in node.meta.get("nn_module_stack", {})]


def _end_of_layer(weight: fx.Node, following: fx.Node, nodes: tuple[fx.Node, ...],
                  modules: dict[str, nn.Module], kinds: dict[fx.Node, str]) -> fx.Node:
    """Where layer ``weight`` ends: the last node of the outermost module that holds it but not
    the next counted layer (a residual block, a stage), or, when that module is the weight
    operation itself, the end of its chain of unary operations."""
    path, next_path = _module_path(weight), _module_path(following)
    common = 0
    while common < min(len(path), len(next_path)) and path[common] == next_path[common]:
        common += 1
    if common == len(path) or (weight.op == "call_module" and path[common] == weight.target):
        return _unary_chain_end(weight, modules, kinds)
    owner = path[common]
    inside = [n for n in nodes if owner in _module_path(n)]
    return inside[-1]


def _carry_split(node: fx.Node, stop: int, order: dict[fx.Node, int], cuts: set[int],
                 kinds: dict[fx.Node, str]) -> fx.Node:
    """From the cut ``node``, follow its only state user while that reshapes it or combines it
    with constants (before position ``stop``); the last cut reached that is not a reshape."""
    reached = [node]
    while len(users := _state_users(node, kinds)) == 1:
        (user,) = users
        if order[user] >= stop or _state_inputs(user, kinds) != [node] or not (
            _reshapes(user) or _combines_with_constants(user)
        ):
            break
        node = user
        if order[node] in cuts:
            reached.append(node)
    kept = [n for n in reached if not _reshapes(n)]
    return kept[-1] if kept else reached[0]


def _reshapes(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in SHAPE_METHODS
    return node.op == "call_function" and node.target in SHAPE_FUNCTIONS


def _combines_with_constants(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in COMBINING_METHODS
    return node.op == "call_function" and node.target in COMBINING_FUNCTIONS


def _cuts(nodes: tuple[fx.Node, ...], kinds: dict[fx.Node, str]) -> list[int]:
    """Positions ``i`` after which state node ``i``'s output is the only live value that is
    not a constant (constants can be recomputed after the cut). The last node is a cut."""
    order = {n: i for i, n in enumerate(nodes)}
    last_use = {n: max((order.get(u, len(nodes)) for u in n.users), default=order[n]) for n in nodes}
    ends: dict[int, int] = {}
    for n in nodes:
        if kinds[n] != CONSTANT:
            ends[last_use[n]] = ends.get(last_use[n], 0) + 1
    cuts, live = [], 0
    for i, n in enumerate(nodes):
        if kinds[n] != CONSTANT:
            live += 1
        live -= ends.get(i, 0)
        if kinds[n] == STATE and last_use[n] > i and live == 1:
            cuts.append(i)
    if nodes and (not cuts or cuts[-1] != len(nodes) - 1):
        cuts.append(len(nodes) - 1)
    return cuts


def _longest_path_only(nodes: tuple[fx.Node, ...], cuts: list[int],
                       counted: dict[fx.Node, bool]) -> dict[fx.Node, bool]:
    """Within each region between consecutive cuts, keep counted only the weight layers on a
    path with the most counted layers; the others are shortcut projections."""
    order = {n: i for i, n in enumerate(nodes)}
    result = dict(counted)
    starts = [-1, *cuts]
    for start, end in zip(starts, cuts):
        region = [n for n in nodes if start < order[n] <= end]
        inside = set(region)
        weight = {n: int(counted.get(n, False)) for n in region}
        forward: dict[fx.Node, int] = {}
        for n in region:
            forward[n] = weight[n] + max((forward[p] for p in n.all_input_nodes if p in inside), default=0)
        backward: dict[fx.Node, int] = {}
        for n in reversed(region):
            backward[n] = weight[n] + max((backward[u] for u in n.users if u in inside), default=0)
        best = max((forward[n] + backward[n] - weight[n] for n in region), default=0)
        for n in region:
            if weight[n] and forward[n] + backward[n] - weight[n] < best:
                result[n] = False
    return result


__all__ = ["CountingRules", "GraphView", "WeightLayer", "graph_view", "trace_model"]
