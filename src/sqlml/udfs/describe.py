"""A loaded model's structure as plain typed values, independent of the model's file format.

:func:`describe_trees` reads a LightGBM model (``Booster.dump_model()``) into a
:class:`TreeEnsemble`; :func:`describe_linear` reads a linear or logistic model's ONNX graph
(skl2onnx's) into a :class:`LinearModel`. Consumers such as :mod:`sqlml.sql.compile` work
on these descriptions and never parse LightGBM's or ONNX's formats themselves.

A description records what the model is, not whether a consumer supports it: an unknown
objective has no link (``None``), a linear tree's leaves are marked ``linear`` and a
split's decision type is LightGBM's own text.

Feature indexes are columns of the preprocessor's input matrix
(:class:`~sqlml.udfs.preprocess.Preprocessor`), in its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from sqlml.udfs.predict import LoadedModel

__all__ = [
    "Leaf",
    "LinearModel",
    "Link",
    "Node",
    "Split",
    "TreeEnsemble",
    "describe_linear",
    "describe_trees",
]

Link: TypeAlias = Literal["identity", "exp", "sigmoid", "softmax"]
"""How raw scores become the output: unchanged, ``exp``, the sigmoid of the only score, or
the softmax over one score per class."""

_IDENTITY_OBJECTIVES = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
)
_EXP_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})
_SIGMOID_OBJECTIVES = frozenset({"binary", "cross_entropy"})


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True, slots=True)
class Leaf:
    """A tree's leaf.

    Attributes:
        value: the leaf's output.
        linear: the leaf holds a linear model (LightGBM's ``linear_tree``); ``value`` is
            then only its constant term.
    """

    value: float
    linear: bool = False


@dataclass(frozen=True, slots=True)
class Split:
    """A tree's internal node.

    Attributes:
        feature: the input matrix column the split tests.
        decision: LightGBM's decision type: ``<=`` (numeric: ``value <= threshold`` goes
            left) or ``==`` (categorical: the codes in ``categories`` go left).
        threshold: a numeric split's threshold (NaN for other splits).
        categories: a categorical split's category codes (empty for other splits).
        default_left: missing values go left (else right), as LightGBM routes them.
        missing: LightGBM's missing type: ``None``, ``NaN`` or ``Zero``.
        left: the subtree of rows that satisfy the split.
        right: the subtree of the other rows.
    """

    feature: int
    decision: str
    threshold: float
    categories: tuple[int, ...]
    default_left: bool
    missing: str
    left: Node
    right: Node


Node: TypeAlias = Leaf | Split
"""A tree: a leaf or a split with two subtrees."""


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """A gradient-boosted tree model: the sum of its trees' leaves, then the link.

    Attributes:
        objective: LightGBM's objective name, e.g. ``regression``, ``binary`` or
            ``multiclass``.
        link: the objective's link, ``None`` for an objective without a known one.
        sigmoid: the sigmoid's scale (``1 / (1 + exp(-sigmoid * score))``); 1.0 unless
            the link is ``sigmoid``.
        num_class: scores per row (trees per iteration): 1 for regression and binary
            models, one per class for multiclass models.
        trees: the trees in training order; tree ``i`` adds to score ``i % num_class``.
        average: the score is the mean over iterations, not the sum (random forest
            boosting).
    """

    objective: str
    link: Link | None
    sigmoid: float
    num_class: int
    trees: tuple[Node, ...]
    average: bool

    @property
    def iterations(self) -> int:
        """The number of boosting iterations (at least 1)."""
        return max(1, len(self.trees) // self.num_class)

    def class_trees(self, k: int) -> tuple[Node, ...]:
        """The trees that add to score ``k``, in training order."""
        return self.trees[k :: self.num_class]


def describe_trees(model: LoadedModel) -> TreeEnsemble:
    """The tree ensemble of a LightGBM model.

    Args:
        model: a loaded model whose algorithm is ``lightgbm``.
    """
    dump: dict[str, Any] = model.booster.dump_model()
    objective, *parameters = str(dump["objective"]).split()
    settings = dict(p.split(":", 1) for p in parameters if ":" in p)
    link: Link | None = None
    sigmoid = 1.0
    if objective in _IDENTITY_OBJECTIVES:
        link = "identity"
    elif objective == "multiclass":
        link = "softmax"
    elif objective in _EXP_OBJECTIVES:
        link = "exp"
    elif objective in _SIGMOID_OBJECTIVES:
        link = "sigmoid"
        sigmoid = float(settings.get("sigmoid", 1.0))
    return TreeEnsemble(
        objective=objective,
        link=link,
        sigmoid=sigmoid,
        num_class=int(dump["num_tree_per_iteration"]),
        trees=tuple(_node(tree["tree_structure"]) for tree in dump["tree_info"]),
        average=bool(dump.get("average_output")),
    )


def _node(node: Mapping[str, Any]) -> Node:
    """One node of ``dump_model()``'s ``tree_structure``, with its subtrees."""
    if "leaf_value" in node:
        return Leaf(float(node["leaf_value"]), "leaf_coeff" in node)
    decision = str(node["decision_type"])
    threshold = float(node["threshold"]) if decision == "<=" else float("nan")
    categories: tuple[int, ...] = ()
    if decision == "==":
        categories = tuple(int(code) for code in str(node["threshold"]).split("||"))
    return Split(
        feature=int(node["split_feature"]),
        decision=decision,
        threshold=threshold,
        categories=categories,
        default_left=bool(node.get("default_left")),
        missing=str(node.get("missing_type", "None")),
        left=_node(node["left_child"]),
        right=_node(node["right_child"]),
    )


# --------------------------------------------------------------------------- linear


@dataclass(frozen=True, slots=True, eq=False)
class LinearModel:
    """A linear or logistic regression over the (scaled) input matrix.

    Attributes:
        coefficients: float64 ``(width, k)``: column ``j`` scores output ``j``. skl2onnx
            writes a binary model as two columns ``[-w, w]``.
        intercepts: float64 ``(k,)``.
        link: ``identity`` (no output transform in the graph), ``sigmoid`` or ``softmax``.
    """

    coefficients: np.ndarray
    intercepts: np.ndarray
    link: Link


def describe_linear(model: LoadedModel) -> LinearModel | None:
    """The coefficients of a linear or logistic model's ONNX graph.

    Args:
        model: a loaded model whose algorithm is ``linear`` or ``logistic``.

    Returns:
        The description, or ``None`` when the graph is not a linear model's (no
        ``MatMul`` by a constant matrix followed by an ``Add`` of a constant).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model.artifact.model).graph
    initializers = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    nodes = list(graph.node)
    operators = {node.op_type for node in nodes}
    matmul = next((node for node in nodes if node.op_type == "MatMul"), None)
    add = next(
        (
            node
            for node in nodes
            if matmul is not None and node.op_type == "Add" and matmul.output[0] in node.input
        ),
        None,
    )
    if matmul is None or add is None or matmul.input[1] not in initializers:
        return None
    coef = np.asarray(initializers[matmul.input[1]], dtype=np.float64)
    bias_name = next((name for name in add.input if name in initializers), None)
    if bias_name is None or coef.ndim != 2:
        return None
    intercept = np.asarray(initializers[bias_name], dtype=np.float64).reshape(-1)
    if intercept.size == 1 and coef.shape[1] > 1:
        intercept = np.repeat(intercept, coef.shape[1])
    link: Link = (
        "softmax" if "Softmax" in operators else "sigmoid" if "Sigmoid" in operators else "identity"
    )
    coef.flags.writeable = False
    intercept.flags.writeable = False
    return LinearModel(coef, intercept, link)
