"""LightGBM's text model format, read in Python before LightGBM itself ever reads it.

``model.txt`` is parsed line by line: the header, each tree block where ``tree_sizes``
says it is, and what follows the trees. Every tree must be a tree: ``num_leaves - 1``
splits, children in range and each node reached exactly once from the root, split
features below the input width, thresholds that are numbers (``inf`` is one LightGBM
writes) and finite leaf values, decision types LightGBM defines, categorical bitsets
within their arrays. A fault is a :class:`Malformed` saying what is wrong; the artifact
check (:mod:`sqlml.udfs.validate`) names the model and the file.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: The deepest tree accepted: LightGBM's own recursion over a tree (``dump_model``) must not
#: exhaust a thread's stack, and real trees are far shallower.
MAX_TREE_DEPTH = 2_000
#: LightGBM's upper bound for ``num_leaves``.
MAX_LEAVES = 131_072
_INT32 = 2**31


class Malformed(ValueError):
    """A fault in a LightGBM text model."""


_OBJECTIVES = {
    "regression": {
        "regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape",
        "gamma", "tweedie", "cross_entropy", "cross_entropy_lambda",
    },
    "binary": {"binary"},
    "multiclass": {"multiclass"},
}  # fmt: skip
_TREE_KEYS = (
    "num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type",
    "left_child", "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value",
    "internal_weight", "internal_count", "cat_boundaries", "cat_threshold", "is_linear",
    "leaf_const", "num_features", "leaf_features", "leaf_coeff", "shrinkage",
)  # fmt: skip
_HEADER_REQUIRED = (
    "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
    "objective", "feature_names", "feature_infos", "tree_sizes",
)  # fmt: skip
_KEY = re.compile(r"[a-z_]+")
_INT = re.compile(r"-?[0-9]{1,19}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_FLOAT_OR_INF = re.compile(rf"{_FLOAT.pattern}|-?inf")
_FEATURE_NAME = re.compile(r"[^\s=]+")
_FEATURE_INFO = re.compile(r"none|\[[^\s\]]+:[^\s\]]+\]|-?[0-9]+(?::-?[0-9]+)*")
_OBJECTIVE_SETTING = re.compile(r"[a-z_]+:[-+0-9.eE]+")
_IMPORTANCE = re.compile(r"[^\s=]+=[-+0-9.eE]+")
_PARAMETER = re.compile(r"\[[a-z0-9_]+: [^\[\]\n\"\\]*\]")
#: After the trees: the (section, line) pairs that open the next section...
_SECTIONS = {
    ("", "feature_importances:"),
    ("", "parameters:"),
    ("feature_importances:", "parameters:"),
    ("parameters:", "end of parameters"),
}
#: ... and what each section's lines look like.
_SECTION_LINES = {"feature_importances:": _IMPORTANCE, "parameters:": _PARAMETER}


def check_text(text: str, width: int, task: str, k: int) -> None:
    lines = text.split("\n")
    if lines[0] != "tree":
        raise Malformed("it does not start with LightGBM's 'tree' line")
    header: dict[str, str] = {}
    offset = len("tree\n")
    for line in lines[1:]:
        if line.startswith("Tree="):
            break
        if line:
            key, _, value = line.partition("=")
            if not _KEY.fullmatch(key) or ("=" in value and key != "feature_names"):
                raise Malformed(f"header line {line[:60]!r} is not key=value")
            if key in header:
                raise Malformed(f"header key {key!r} appears twice")
            header[key] = value
        offset += len(line) + 1
    else:
        raise Malformed("it has no trees (it may have been cut short)")
    missing = [key for key in _HEADER_REQUIRED if key not in header]
    if missing:
        raise Malformed(f"its header lacks {', '.join(missing)}")
    if header["version"] != "v4":
        raise Malformed(f"unknown model version {header['version']!r}")
    num_class = _int(header["num_class"], "num_class")
    per_iteration = _int(header["num_tree_per_iteration"], "num_tree_per_iteration")
    if _int(header["label_index"], "label_index") != 0:
        raise Malformed("label_index must be 0")
    expected = k if task == "classification" and k > 2 else 1
    if num_class < 1 or num_class != expected or per_iteration != num_class:
        raise Malformed(
            f"num_class={num_class} and num_tree_per_iteration={per_iteration}, but the "
            f"manifest's {task} with {k} classes needs {expected}"
        )
    _check_objective(header["objective"], task, k, num_class)
    if _int(header["max_feature_idx"], "max_feature_idx") != width - 1:
        raise Malformed(
            f"max_feature_idx={header['max_feature_idx']}, but preprocess.json gives "
            f"{width} input columns (max_feature_idx={width - 1})"
        )
    for key, pattern in (("feature_names", _FEATURE_NAME), ("feature_infos", _FEATURE_INFO)):
        items = header[key].split(" ")
        if len(items) != width or not all(pattern.fullmatch(item) for item in items):
            raise Malformed(f"{key} must be {width} space-separated entries")
    if header.get("average_output"):
        raise Malformed("average_output takes no value")
    sizes = [_int(size, "tree_sizes") for size in header["tree_sizes"].split(" ")]
    if not sizes or len(sizes) % num_class:
        raise Malformed(f"it has {len(sizes)} trees, not a multiple of num_class={num_class}")
    for i, size in enumerate(sizes):
        if size <= 0 or offset + size > len(text):
            raise Malformed(
                f"tree_sizes puts tree {i} past the end of the file (it may have been cut short)"
            )
        try:
            _check_tree(text[offset : offset + size], i, width)
        except Malformed as exc:
            raise Malformed(f"Tree={i}: {exc}") from None
        offset += size
    _check_trailer(text[offset:])


def _check_objective(objective: str, task: str, k: int, num_class: int) -> None:
    name, *settings = objective.split(" ")
    family = "regression" if task == "regression" else "binary" if k == 2 else "multiclass"
    if name not in _OBJECTIVES[family]:
        raise Malformed(f"objective {name!r} is not one of a {family} model")
    for setting in settings:
        if not _OBJECTIVE_SETTING.fullmatch(setting):
            raise Malformed(f"objective setting {setting!r} is not name:number")
        key, value = setting.split(":")
        if not math.isfinite(_float(value, "objective")):
            raise Malformed(f"objective setting {setting!r} is not finite")
        if key == "num_class" and _int(value, "objective num_class") != num_class:
            raise Malformed(f"objective {objective!r} disagrees with num_class={num_class}")


def _check_tree(block: str, index: int, width: int) -> None:
    """One ``Tree=i`` block, as ``tree_sizes`` delimits it."""
    head = f"Tree={index}\n"
    if not block.startswith(head):
        raise Malformed(f"tree_sizes does not point at the line {head.strip()!r}")
    body, sep, rest = block[len(head) :].partition("\n\n")
    if not sep or rest.strip("\n"):
        raise Malformed("its size in tree_sizes is not the size of its block")
    fields: dict[str, str] = {}
    for line in body.split("\n"):
        key, sep, value = line.partition("=")
        if not sep or key not in _TREE_KEYS or "=" in value:
            raise Malformed(f"line {line[:60]!r} is not a known key=value")
        if key in fields:
            raise Malformed(f"{key} appears twice")
        fields[key] = value
    for key in ("num_leaves", "leaf_value", "shrinkage"):
        if key not in fields:
            raise Malformed(f"it lacks {key}")
    leaves = _int(fields["num_leaves"], "num_leaves")
    if not 1 <= leaves <= MAX_LEAVES:
        raise Malformed(f"num_leaves={leaves} is not in [1, {MAX_LEAVES}]")
    _floats(fields, "leaf_value", leaves)
    _floats(fields, "shrinkage", 1)
    for key in ("leaf_weight", "leaf_count"):
        if key in fields and (leaves > 1 or fields[key]):
            _numbers(fields, key, leaves, integer=key == "leaf_count", inf=True)
    splits = leaves - 1
    if splits:
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if key not in fields:
                raise Malformed(f"it lacks {key}")
    # What LightGBM writes but never predicts with may be infinite (not NaN).
    for key in ("split_gain", "internal_value", "internal_weight", "internal_count"):
        if key in fields and (splits or fields[key]):
            _numbers(fields, key, splits, integer=key == "internal_count", inf=True)
    if not splits:
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if fields.get(key):
                raise Malformed(f"a single-leaf tree has a {key}")
    else:
        _ints(fields, "split_feature", splits, 0, width)
    thresholds = _numbers(fields, "threshold", splits, integer=False, inf=True) if splits else []
    decisions = _ints(fields, "decision_type", splits, 0, 16) if splits else []
    left = _ints(fields, "left_child", splits, -leaves, splits) if splits else []
    right = _ints(fields, "right_child", splits, -leaves, splits) if splits else []
    num_cat = _int(fields.get("num_cat", "0"), "num_cat")
    categorical = _check_categories(fields, num_cat)
    for node, decision in enumerate(decisions):
        if (decision >> 2) & 3 == 3:
            raise Malformed(f"decision_type {decision} of split {node} has no missing type")
        if decision & 1:
            if not (thresholds[node].is_integer() and 0 <= thresholds[node] < categorical):
                raise Malformed(
                    f"categorical split {node} names bitset {thresholds[node]}, of {num_cat}"
                )
        elif decision & ~0b1110:
            raise Malformed(f"decision_type {decision} of split {node} is not one LightGBM writes")
    _check_shape(left, right, leaves)
    _check_linear(fields, leaves, width)


def _check_categories(fields: Mapping[str, str], num_cat: int) -> int:
    """The number of categorical bitsets (``num_cat``), checked."""
    if not 0 <= num_cat <= MAX_LEAVES:
        raise Malformed(f"num_cat={num_cat} is out of range")
    if num_cat == 0:
        if "cat_boundaries" in fields or "cat_threshold" in fields:
            raise Malformed("it has categorical bitsets but num_cat=0")
        return 0
    if "cat_boundaries" not in fields or "cat_threshold" not in fields:
        raise Malformed("num_cat > 0 but cat_boundaries or cat_threshold is missing")
    bounds = _ints(fields, "cat_boundaries", num_cat + 1, 0, _INT32)
    words = len(fields["cat_threshold"].split(" "))
    if bounds[0] != 0 or bounds[-1] != words or any(a > b for a, b in itertools.pairwise(bounds)):
        raise Malformed("cat_boundaries do not delimit cat_threshold")
    _ints(fields, "cat_threshold", words, 0, 2**32)
    return num_cat


def _check_shape(left: Sequence[int], right: Sequence[int], leaves: int) -> None:
    """The splits form one tree: each split and leaf is reached once, from the root."""
    if leaves == 1:
        return
    seen_nodes = [False] * (leaves - 1)
    seen_leaves = [False] * leaves
    seen_nodes[0] = True
    depth = [0] * (leaves - 1)
    for node in range(leaves - 1):
        if not seen_nodes[node]:
            raise Malformed(f"split {node} is not reached from the root")
        for child in (left[node], right[node]):
            if child >= 0:
                # LightGBM numbers splits in the order it makes them: children come after.
                if child <= node or seen_nodes[child]:
                    raise Malformed(f"split {node}'s child {child} makes a cycle or a shared node")
                seen_nodes[child] = True
                depth[child] = depth[node] + 1
                if depth[child] > MAX_TREE_DEPTH:
                    raise Malformed(f"it is deeper than {MAX_TREE_DEPTH} splits")
            else:
                if seen_leaves[~child]:
                    raise Malformed(f"leaf {~child} is reached twice")
                seen_leaves[~child] = True
    if not all(seen_leaves):
        raise Malformed(f"leaf {seen_leaves.index(False)} is not reached from the root")


def _check_linear(fields: Mapping[str, str], leaves: int, width: int) -> None:
    linear = _int(fields.get("is_linear", "0"), "is_linear")
    keys = ("leaf_const", "num_features", "leaf_features", "leaf_coeff")
    if linear not in (0, 1):
        raise Malformed(f"is_linear={linear} is not 0 or 1")
    if not linear:
        if any(key in fields for key in keys):
            raise Malformed("it has linear leaves but is_linear=0")
        return
    if any(key not in fields for key in keys):
        raise Malformed(f"is_linear=1 needs {', '.join(keys)}")
    _floats(fields, "leaf_const", leaves)
    counts = _ints(fields, "num_features", leaves, 0, width + 1)
    used = fields["leaf_features"].split()
    coefficients = fields["leaf_coeff"].split()
    if len(used) != sum(counts) or len(coefficients) != sum(counts):
        raise Malformed("leaf_features and leaf_coeff do not have num_features entries")
    _check_values(used, "leaf_features", integer=True, low=0, high=width)
    _check_values(coefficients, "leaf_coeff", integer=False)


def _check_trailer(text: str) -> None:
    """What follows the trees: ``end of trees``, importances, parameters, pandas metadata."""
    lines = text.split("\n")
    if lines[0] != "end of trees":
        raise Malformed("'end of trees' does not follow the last tree (it may have been cut)")
    section = ""
    for line in lines[1:]:
        if not line:
            continue
        if (section, line) in _SECTIONS or line == "pandas_categorical:null":
            section = line
        elif section not in _SECTION_LINES or not _SECTION_LINES[section].fullmatch(line):
            raise Malformed(f"unexpected line {line[:60]!r} after the trees")
    if section not in ("", "end of parameters", "pandas_categorical:null"):
        raise Malformed("its parameters section does not end (it may have been cut short)")


def _int(text: str, what: str) -> int:
    if not _INT.fullmatch(text):
        raise Malformed(f"{what} value {text[:30]!r} is not an integer")
    value = int(text)
    if not -_INT32 <= value < 2**63:
        raise Malformed(f"{what} value {value} is out of range")
    return value


def _float(text: str, what: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise Malformed(f"{what} value {text[:30]!r} is not a number")
    return float(text)


def _check_values(
    items: Sequence[str],
    key: str,
    *,
    integer: bool,
    low: int = -_INT32,
    high: int = _INT32,
    inf: bool = False,
) -> list[Any]:
    """Integers in ``[low, high)``, or floats: finite, or with ``inf`` also infinite
    (LightGBM writes ``inf`` for a split that sends every value left), never NaN.

    Only a faulty line is gone through again value by value, to name the fault.
    """
    if integer:
        if all(map(_INT.fullmatch, items)):
            numbers = list(map(int, items))
            if not numbers or (low <= min(numbers) and max(numbers) < high):
                return numbers
        for item in items:
            value = _int(item, key)
            if not low <= value < high:
                raise Malformed(f"{key} value {value} is not in [{low}, {high})")
        raise AssertionError("unreachable")  # pragma: no cover
    if all(map((_FLOAT_OR_INF if inf else _FLOAT).fullmatch, items)):
        values = list(map(float, items))
        if inf or all(map(math.isfinite, values)):
            return values
    for item in items:
        if inf and item in ("inf", "-inf"):
            continue
        if not math.isfinite(_float(item, key)) and not inf:
            raise Malformed(f"{key} value {item[:30]!r} is not finite")
    raise AssertionError("unreachable")  # pragma: no cover


def _numbers(
    fields: Mapping[str, str], key: str, n: int, *, integer: bool, inf: bool = False
) -> list[Any]:
    items = fields[key].split(" ") if fields[key] else []
    if len(items) != n:
        raise Malformed(f"{key} has {len(items)} values, num_leaves requires {n}")
    return _check_values(items, key, integer=integer, inf=inf)


def _floats(fields: Mapping[str, str], key: str, n: int) -> list[float]:
    return _numbers(fields, key, n, integer=False)


def _ints(fields: Mapping[str, str], key: str, n: int, low: int, high: int) -> list[int]:
    items = fields[key].split(" ") if fields[key] else []
    if len(items) != n:
        raise Malformed(f"{key} has {len(items)} values, num_leaves requires {n}")
    return _check_values(items, key, integer=True, low=low, high=high)
