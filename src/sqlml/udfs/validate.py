"""Check an artifact's structure before any native library reads it.

An artifact's SHA-256 proves its files are the ones registered, not that they are shaped
as sqlml writes them, and LightGBM and ONNX Runtime trust the files they are given: a
LightGBM model cut in half, or one whose split names a feature the model does not have,
crashes the process that loads it. So every file is checked here first, in Python:

* ``manifest.json`` and ``preprocess.json`` against JSON Schemas (:data:`MANIFEST_SCHEMA`,
  :data:`PREPROCESS_SCHEMA`), then for what a schema cannot say (the manifest, the
  preprocessing and the model agree with each other; numbers are finite).
* ``model.txt`` is parsed line by line as LightGBM's text format: the header, each tree
  block where ``tree_sizes`` says it is, and what follows the trees. Every tree must be a
  tree: ``num_leaves - 1`` splits, children in range and each node reached exactly once
  from the root, split features below the input width, thresholds that are numbers
  (``inf`` is one LightGBM writes) and finite leaf values,
  decision types LightGBM defines, categorical bitsets within their arrays.
* ``model.onnx`` is parsed as protobuf (the onnx package's upb parser), and must use only
  the operators sqlml's converters emit, hold no subgraphs or external data, take one
  ``(n, width)`` input, and keep its tree ensembles' and matrices' indices in range.

Each refusal is an :class:`~sqlml.errors.ArtifactRefused` naming the file and the fault.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from sqlml.catalog.entities import arrow_type_from_string
from sqlml.errors import ArtifactRefused
from sqlml.udfs import preprocess

#: The deepest tree accepted: LightGBM's own recursion over a tree (``dump_model``) must not
#: exhaust a thread's stack, and real trees are far shallower.
MAX_TREE_DEPTH = 2_000
#: LightGBM's upper bound for ``num_leaves``.
MAX_LEAVES = 131_072
_INT32 = 2**31

ALGORITHM_FORMATS = {
    "lightgbm": "lightgbm",
    "linear": "onnx",
    "logistic": "onnx",
    "random_forest": "onnx",
}
_ENCODINGS = {"lightgbm": "codes", "onnx": "onehot"}
_LABEL = {"type": ["string", "integer", "number", "boolean"]}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sqlml artifact manifest.json",
    "type": "object",
    "required": ["version", "format", "task", "algorithm", "target", "target_type", "classes"],
    "properties": {
        "version": {"const": 1},
        "format": {"enum": sorted(set(ALGORITHM_FORMATS.values()))},
        "task": {"enum": ["classification", "regression"]},
        "algorithm": {"enum": sorted(ALGORITHM_FORMATS)},
        "target": {"type": "string", "minLength": 1},
        "target_type": {"type": "string", "minLength": 1},
        "classes": {"type": "array", "items": _LABEL, "uniqueItems": True},
        "files": {"type": "object", "additionalProperties": _SHA256},
        "onnx_input": {"enum": ["double", "float"]},
    },
    "allOf": [
        {
            "if": {"properties": {"task": {"const": "classification"}}},
            "then": {"properties": {"classes": {"minItems": 2}}},
            "else": {"properties": {"classes": {"maxItems": 0}}},
        },
        {
            "if": {"properties": {"format": {"const": "onnx"}}},
            "then": {"required": ["onnx_input"]},
        },
    ],
}
"""What ``manifest.json`` holds (``files`` and ``signature`` are checked by the unpacker)."""

PREPROCESS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sqlml artifact preprocess.json",
    "type": "object",
    "required": ["version", "encoding", "columns"],
    "properties": {
        "version": {"const": preprocess.SPEC_VERSION},
        "encoding": {"enum": list(preprocess.ENCODINGS)},
        "columns": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type", "kind"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"type": "string", "minLength": 1},
                    "kind": {"enum": list(preprocess.KINDS)},
                    "categories": {
                        "type": "array",
                        "items": {"type": "string"},
                        "uniqueItems": True,
                    },
                },
                "if": {"properties": {"kind": {"const": preprocess.CATEGORY}}},
                "then": {"required": ["categories"]},
                "else": {"not": {"required": ["categories"]}},
            },
        },
        "center": {"type": "array", "items": {"type": "number"}},
        "scale": {"type": "array", "items": {"type": "number"}},
    },
    "dependentRequired": {"center": ["scale"], "scale": ["center"]},
}
"""What ``preprocess.json`` holds (see :class:`sqlml.udfs.preprocess.Preprocessor`)."""


def check_artifact(
    manifest: Mapping[str, Any], spec: object, model: bytes, ref: str
) -> Mapping[str, Any]:
    """Check an artifact's three files, alone and against each other.

    Args:
        manifest: the parsed ``manifest.json`` (its version, format and files are already
            checked).
        spec: the parsed ``preprocess.json``.
        model: the model file's bytes.
        ref: the model reference, for messages.

    Returns:
        The preprocessing spec, known to be a JSON object.

    Raises:
        ArtifactRefused: a file is not shaped as sqlml writes it.
    """
    _schema(MANIFEST_SCHEMA, manifest, ref, "manifest.json")
    format_ = str(manifest["format"])
    algorithm = str(manifest["algorithm"])
    if ALGORITHM_FORMATS[algorithm] != format_:
        _refuse(ref, "manifest.json", f"algorithm {algorithm!r} is not stored as {format_!r}")
    if (algorithm, manifest["task"]) in {("linear", "classification"), ("logistic", "regression")}:
        _refuse(ref, "manifest.json", f"algorithm {algorithm!r} cannot do {manifest['task']}")
    checked = check_preprocess(spec, ref)
    if checked["encoding"] != _ENCODINGS[format_]:
        _refuse(
            ref,
            "preprocess.json",
            f"encoding {checked['encoding']!r} is not the one {format_} models use",
        )
    width = preprocess.Preprocessor(checked).width
    k = len(manifest["classes"])
    if format_ == "lightgbm":
        check_lightgbm(model, width, str(manifest["task"]), k, ref)
    else:
        check_onnx(model, width, str(manifest["task"]), k, str(manifest["onnx_input"]), ref)
    return checked


def check_preprocess(spec: object, ref: str) -> Mapping[str, Any]:
    """Check ``preprocess.json``: its schema, column types and kinds, center and scale.

    Returns:
        ``spec``, known to be a JSON object the :class:`~sqlml.udfs.preprocess.Preprocessor`
        can load.

    Raises:
        ArtifactRefused: it is not.
    """
    file = "preprocess.json"
    _schema(PREPROCESS_SCHEMA, spec, ref, file)
    assert isinstance(spec, Mapping)
    names: set[str] = set()
    for i, column in enumerate(spec["columns"]):
        name = column["name"]
        if name in names:
            _refuse(ref, file, f"column {name!r} appears twice")
        names.add(name)
        try:
            type_ = arrow_type_from_string(column["type"])
        except (ValueError, KeyError, TypeError) as exc:
            _refuse(ref, file, f"columns/{i}: {column['type']!r} is not an Arrow type ({exc})")
        if preprocess.kind_of(type_) != column["kind"]:
            _refuse(ref, file, f"columns/{i}: a {column['type']} column is not a {column['kind']}")
    width = preprocess.Preprocessor(spec).width
    if width < 1:
        _refuse(ref, file, "it gives the model no input column")
    if "center" in spec:
        center, scale = spec["center"], spec["scale"]
        if len(center) != width or len(scale) != width:
            _refuse(ref, file, f"center and scale must have {width} values, one per input")
        if not all(math.isfinite(v) for v in center) or not all(
            math.isfinite(v) and v != 0 for v in scale
        ):
            _refuse(ref, file, "center and scale must be finite, and scale non-zero")
    return spec


# --------------------------------------------------------------------------- LightGBM

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


class _Refusal(Exception):
    """A fault in model.txt, raised while parsing and turned into ArtifactRefused."""


def check_lightgbm(model: bytes, width: int, task: str, k: int, ref: str) -> None:
    """Check ``model.txt``: a LightGBM text model of ``width`` inputs for the manifest's
    task and ``k`` classes.

    Raises:
        ArtifactRefused: it is not one.
    """
    try:
        text = model.decode("ascii")
    except UnicodeDecodeError:
        _refuse(ref, "model.txt", "it is not ASCII text")
    if "\0" in text or "\r" in text:
        _refuse(ref, "model.txt", "it holds NUL or carriage-return characters")
    try:
        _check_lightgbm_text(text, width, task, k)
    except _Refusal as exc:
        _refuse(ref, "model.txt", str(exc))


def _check_lightgbm_text(text: str, width: int, task: str, k: int) -> None:
    lines = text.split("\n")
    if lines[0] != "tree":
        raise _Refusal("it does not start with LightGBM's 'tree' line")
    header: dict[str, str] = {}
    offset = len("tree\n")
    for line in lines[1:]:
        if line.startswith("Tree="):
            break
        if line:
            key, _, value = line.partition("=")
            if not _KEY.fullmatch(key) or ("=" in value and key != "feature_names"):
                raise _Refusal(f"header line {line[:60]!r} is not key=value")
            if key in header:
                raise _Refusal(f"header key {key!r} appears twice")
            header[key] = value
        offset += len(line) + 1
    else:
        raise _Refusal("it has no trees (it may have been cut short)")
    missing = [key for key in _HEADER_REQUIRED if key not in header]
    if missing:
        raise _Refusal(f"its header lacks {', '.join(missing)}")
    if header["version"] != "v4":
        raise _Refusal(f"unknown model version {header['version']!r}")
    num_class = _int(header["num_class"], "num_class")
    per_iteration = _int(header["num_tree_per_iteration"], "num_tree_per_iteration")
    if _int(header["label_index"], "label_index") != 0:
        raise _Refusal("label_index must be 0")
    expected = k if task == "classification" and k > 2 else 1
    if num_class < 1 or num_class != expected or per_iteration != num_class:
        raise _Refusal(
            f"num_class={num_class} and num_tree_per_iteration={per_iteration}, but the "
            f"manifest's {task} with {k} classes needs {expected}"
        )
    _check_objective(header["objective"], task, k, num_class)
    if _int(header["max_feature_idx"], "max_feature_idx") != width - 1:
        raise _Refusal(
            f"max_feature_idx={header['max_feature_idx']}, but preprocess.json gives "
            f"{width} input columns (max_feature_idx={width - 1})"
        )
    for key, pattern in (("feature_names", _FEATURE_NAME), ("feature_infos", _FEATURE_INFO)):
        items = header[key].split(" ")
        if len(items) != width or not all(pattern.fullmatch(item) for item in items):
            raise _Refusal(f"{key} must be {width} space-separated entries")
    if header.get("average_output"):
        raise _Refusal("average_output takes no value")
    sizes = [_int(size, "tree_sizes") for size in header["tree_sizes"].split(" ")]
    if not sizes or len(sizes) % num_class:
        raise _Refusal(f"it has {len(sizes)} trees, not a multiple of num_class={num_class}")
    for i, size in enumerate(sizes):
        if size <= 0 or offset + size > len(text):
            raise _Refusal(
                f"tree_sizes puts tree {i} past the end of the file (it may have been cut short)"
            )
        try:
            _check_tree(text[offset : offset + size], i, width)
        except _Refusal as exc:
            raise _Refusal(f"Tree={i}: {exc}") from None
        offset += size
    _check_trailer(text[offset:])


def _check_objective(objective: str, task: str, k: int, num_class: int) -> None:
    name, *settings = objective.split(" ")
    family = "regression" if task == "regression" else "binary" if k == 2 else "multiclass"
    if name not in _OBJECTIVES[family]:
        raise _Refusal(f"objective {name!r} is not one of a {family} model")
    for setting in settings:
        if not _OBJECTIVE_SETTING.fullmatch(setting):
            raise _Refusal(f"objective setting {setting!r} is not name:number")
        key, value = setting.split(":")
        if not math.isfinite(_float(value, "objective")):
            raise _Refusal(f"objective setting {setting!r} is not finite")
        if key == "num_class" and _int(value, "objective num_class") != num_class:
            raise _Refusal(f"objective {objective!r} disagrees with num_class={num_class}")


def _check_tree(block: str, index: int, width: int) -> None:
    """One ``Tree=i`` block, as ``tree_sizes`` delimits it."""
    head = f"Tree={index}\n"
    if not block.startswith(head):
        raise _Refusal(f"tree_sizes does not point at the line {head.strip()!r}")
    body, sep, rest = block[len(head) :].partition("\n\n")
    if not sep or rest.strip("\n"):
        raise _Refusal("its size in tree_sizes is not the size of its block")
    fields: dict[str, str] = {}
    for line in body.split("\n"):
        key, sep, value = line.partition("=")
        if not sep or key not in _TREE_KEYS or "=" in value:
            raise _Refusal(f"line {line[:60]!r} is not a known key=value")
        if key in fields:
            raise _Refusal(f"{key} appears twice")
        fields[key] = value
    for key in ("num_leaves", "leaf_value", "shrinkage"):
        if key not in fields:
            raise _Refusal(f"it lacks {key}")
    leaves = _int(fields["num_leaves"], "num_leaves")
    if not 1 <= leaves <= MAX_LEAVES:
        raise _Refusal(f"num_leaves={leaves} is not in [1, {MAX_LEAVES}]")
    _floats(fields, "leaf_value", leaves)
    _floats(fields, "shrinkage", 1)
    for key in ("leaf_weight", "leaf_count"):
        if key in fields and (leaves > 1 or fields[key]):
            _numbers(fields, key, leaves, integer=key == "leaf_count", inf=True)
    splits = leaves - 1
    if splits:
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if key not in fields:
                raise _Refusal(f"it lacks {key}")
    # What LightGBM writes but never predicts with may be infinite (not NaN).
    for key in ("split_gain", "internal_value", "internal_weight", "internal_count"):
        if key in fields and (splits or fields[key]):
            _numbers(fields, key, splits, integer=key == "internal_count", inf=True)
    if not splits:
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if fields.get(key):
                raise _Refusal(f"a single-leaf tree has a {key}")
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
            raise _Refusal(f"decision_type {decision} of split {node} has no missing type")
        if decision & 1:
            if not (thresholds[node].is_integer() and 0 <= thresholds[node] < categorical):
                raise _Refusal(
                    f"categorical split {node} names bitset {thresholds[node]}, of {num_cat}"
                )
        elif decision & ~0b1110:
            raise _Refusal(f"decision_type {decision} of split {node} is not one LightGBM writes")
    _check_shape(left, right, leaves)
    _check_linear(fields, leaves, width)


def _check_categories(fields: Mapping[str, str], num_cat: int) -> int:
    """The number of categorical bitsets (``num_cat``), checked."""
    if not 0 <= num_cat <= MAX_LEAVES:
        raise _Refusal(f"num_cat={num_cat} is out of range")
    if num_cat == 0:
        if "cat_boundaries" in fields or "cat_threshold" in fields:
            raise _Refusal("it has categorical bitsets but num_cat=0")
        return 0
    if "cat_boundaries" not in fields or "cat_threshold" not in fields:
        raise _Refusal("num_cat > 0 but cat_boundaries or cat_threshold is missing")
    bounds = _ints(fields, "cat_boundaries", num_cat + 1, 0, _INT32)
    words = len(fields["cat_threshold"].split(" "))
    if bounds[0] != 0 or bounds[-1] != words or any(a > b for a, b in itertools.pairwise(bounds)):
        raise _Refusal("cat_boundaries do not delimit cat_threshold")
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
            raise _Refusal(f"split {node} is not reached from the root")
        for child in (left[node], right[node]):
            if child >= 0:
                # LightGBM numbers splits in the order it makes them: children come after.
                if child <= node or seen_nodes[child]:
                    raise _Refusal(f"split {node}'s child {child} makes a cycle or a shared node")
                seen_nodes[child] = True
                depth[child] = depth[node] + 1
                if depth[child] > MAX_TREE_DEPTH:
                    raise _Refusal(f"it is deeper than {MAX_TREE_DEPTH} splits")
            else:
                if seen_leaves[~child]:
                    raise _Refusal(f"leaf {~child} is reached twice")
                seen_leaves[~child] = True
    if not all(seen_leaves):
        raise _Refusal(f"leaf {seen_leaves.index(False)} is not reached from the root")


def _check_linear(fields: Mapping[str, str], leaves: int, width: int) -> None:
    linear = _int(fields.get("is_linear", "0"), "is_linear")
    keys = ("leaf_const", "num_features", "leaf_features", "leaf_coeff")
    if linear not in (0, 1):
        raise _Refusal(f"is_linear={linear} is not 0 or 1")
    if not linear:
        if any(key in fields for key in keys):
            raise _Refusal("it has linear leaves but is_linear=0")
        return
    if any(key not in fields for key in keys):
        raise _Refusal(f"is_linear=1 needs {', '.join(keys)}")
    _floats(fields, "leaf_const", leaves)
    counts = _ints(fields, "num_features", leaves, 0, width + 1)
    used = fields["leaf_features"].split()
    coefficients = fields["leaf_coeff"].split()
    if len(used) != sum(counts) or len(coefficients) != sum(counts):
        raise _Refusal("leaf_features and leaf_coeff do not have num_features entries")
    _check_values(used, "leaf_features", integer=True, low=0, high=width)
    _check_values(coefficients, "leaf_coeff", integer=False)


def _check_trailer(text: str) -> None:
    """What follows the trees: ``end of trees``, importances, parameters, pandas metadata."""
    lines = text.split("\n")
    if lines[0] != "end of trees":
        raise _Refusal("'end of trees' does not follow the last tree (it may have been cut)")
    section = ""
    for line in lines[1:]:
        if not line:
            continue
        if (section, line) in _SECTIONS or line == "pandas_categorical:null":
            section = line
        elif section not in _SECTION_LINES or not _SECTION_LINES[section].fullmatch(line):
            raise _Refusal(f"unexpected line {line[:60]!r} after the trees")
    if section not in ("", "end of parameters", "pandas_categorical:null"):
        raise _Refusal("its parameters section does not end (it may have been cut short)")


def _int(text: str, what: str) -> int:
    if not _INT.fullmatch(text):
        raise _Refusal(f"{what} value {text[:30]!r} is not an integer")
    value = int(text)
    if not -_INT32 <= value < 2**63:
        raise _Refusal(f"{what} value {value} is out of range")
    return value


def _float(text: str, what: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise _Refusal(f"{what} value {text[:30]!r} is not a number")
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
                raise _Refusal(f"{key} value {value} is not in [{low}, {high})")
        raise AssertionError("unreachable")  # pragma: no cover
    if all(map((_FLOAT_OR_INF if inf else _FLOAT).fullmatch, items)):
        values = list(map(float, items))
        if inf or all(map(math.isfinite, values)):
            return values
    for item in items:
        if inf and item in ("inf", "-inf"):
            continue
        if not math.isfinite(_float(item, key)) and not inf:
            raise _Refusal(f"{key} value {item[:30]!r} is not finite")
    raise AssertionError("unreachable")  # pragma: no cover


def _numbers(
    fields: Mapping[str, str], key: str, n: int, *, integer: bool, inf: bool = False
) -> list[Any]:
    items = fields[key].split(" ") if fields[key] else []
    if len(items) != n:
        raise _Refusal(f"{key} has {len(items)} values, num_leaves requires {n}")
    return _check_values(items, key, integer=integer, inf=inf)


def _floats(fields: Mapping[str, str], key: str, n: int) -> list[float]:
    return _numbers(fields, key, n, integer=False)


def _ints(fields: Mapping[str, str], key: str, n: int, low: int, high: int) -> list[int]:
    items = fields[key].split(" ") if fields[key] else []
    if len(items) != n:
        raise _Refusal(f"{key} has {len(items)} values, num_leaves requires {n}")
    return _check_values(items, key, integer=True, low=low, high=high)


# --------------------------------------------------------------------------- ONNX

_ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
#: The operators skl2onnx writes for sqlml's linear, logistic and random forest models.
ONNX_OPERATORS = frozenset(
    {
        "Abs", "Add", "ArgMax", "ArrayFeatureExtractor", "Cast", "Concat", "Div", "Flatten",
        "Identity", "LinearClassifier", "LinearRegressor", "MatMul", "Mul", "Normalizer",
        "ReduceSum", "Reshape", "Sigmoid", "Softmax", "Sub", "TreeEnsembleClassifier",
        "TreeEnsembleRegressor", "ZipMap",
    }
)  # fmt: skip
_ONNX_TYPES = {"float": 1, "double": 11}


def check_onnx(model: bytes, width: int, task: str, k: int, input_type: str, ref: str) -> None:
    """Check ``model.onnx``: an ONNX graph of one ``(n, width)`` input, sqlml's operators
    only, no subgraphs or external data, tree and matrix indices in range.

    Raises:
        ArtifactRefused: it is not one.
    """
    import onnx
    from google.protobuf.message import DecodeError

    file = "model.onnx"
    try:
        proto = onnx.load_from_string(model)
    except (DecodeError, ValueError, RuntimeError) as exc:
        _refuse(ref, file, f"it is not an ONNX protobuf ({exc})")
    graph = proto.graph
    if len(proto.functions) or any(o.domain not in _ONNX_DOMAINS for o in proto.opset_import):
        _refuse(ref, file, "it defines functions or imports an operator domain sqlml does not use")
    if len(graph.input) != 1:
        _refuse(ref, file, f"it has {len(graph.input)} inputs, not one")
    tensor = graph.input[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type != _ONNX_TYPES[input_type] or len(dims) != 2 or dims[1] != width:
        _refuse(ref, file, f"its input is not a ({input_type}, n x {width}) tensor")
    outputs = [o.name for o in graph.output]
    expected = ["label", "probabilities"] if task == "classification" else ["variable"]
    if outputs != expected:
        _refuse(ref, file, f"its outputs are {outputs}, expected {expected}")
    initializers = {}
    for tensor_proto in graph.initializer:
        if tensor_proto.data_location == onnx.TensorProto.EXTERNAL or len(
            tensor_proto.external_data
        ):
            _refuse(ref, file, f"initializer {tensor_proto.name!r} points at external data")
        initializers[tensor_proto.name] = tensor_proto
    for node in graph.node:
        if node.domain not in _ONNX_DOMAINS or node.op_type not in ONNX_OPERATORS:
            _refuse(ref, file, f"operator {node.domain}.{node.op_type} is not one sqlml writes")
        attributes = {a.name: a for a in node.attribute}
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in
               node.attribute):  # fmt: skip
            _refuse(ref, file, f"operator {node.op_type} holds a subgraph")
        try:
            if node.op_type.startswith("TreeEnsemble"):
                _check_tree_ensemble(node.op_type, attributes, width, k)
            elif node.op_type == "MatMul" and node.input[1] in initializers:
                rows = list(initializers[node.input[1]].dims)[:1]
                if rows != [width]:
                    raise _Refusal(f"its matrix has {rows} rows for {width} inputs")
        except _Refusal as exc:
            _refuse(ref, file, f"{node.op_type} {node.name!r}: {exc}")


def _check_tree_ensemble(op: str, attributes: Mapping[str, Any], width: int, k: int) -> None:
    def ints(name: str) -> list[int]:
        return list(attributes[name].ints) if name in attributes else []

    trees, nodes = ints("nodes_treeids"), ints("nodes_nodeids")
    keys = ("nodes_featureids", "nodes_truenodeids", "nodes_falsenodeids")
    if not trees or any(len(ints(key)) != len(trees) for key in ("nodes_nodeids", *keys)):
        raise _Refusal("its nodes_* attributes do not have one entry per node")
    modes = list(attributes["nodes_modes"].strings) if "nodes_modes" in attributes else []
    if len(modes) != len(trees) or len(attributes["nodes_values"].floats) != len(trees):
        raise _Refusal("nodes_modes or nodes_values do not have one entry per node")
    known = set(zip(trees, nodes, strict=True))
    if len(known) != len(trees):
        raise _Refusal("two nodes share a (tree, node) id")
    for i, (tree, feature, true, false) in enumerate(
        zip(trees, *(ints(key) for key in keys), strict=True)
    ):
        if modes[i] == b"LEAF":
            continue
        if not 0 <= feature < width:
            raise _Refusal(f"node {i} splits on feature {feature} of {width}")
        if (tree, true) not in known or (tree, false) not in known:
            raise _Refusal(f"node {i}'s children are not nodes of tree {tree}")
    prefix = "class" if op == "TreeEnsembleClassifier" else "target"
    outputs = k if prefix == "class" else int(attributes["n_targets"].i)
    targets = ints(f"{prefix}_ids")
    owner_trees, owner_nodes = ints(f"{prefix}_treeids"), ints(f"{prefix}_nodeids")
    weights = attributes[f"{prefix}_weights"].floats if f"{prefix}_weights" in attributes else []
    if {len(owner_trees), len(owner_nodes), len(weights)} != {len(targets)}:
        raise _Refusal(f"its {prefix}_* attributes do not have one entry per weight")
    if prefix == "class":
        labels = len(ints("classlabels_int64s")) or len(
            attributes["classlabels_strings"].strings if "classlabels_strings" in attributes
            else []
        )  # fmt: skip
        if labels != outputs:
            raise _Refusal(f"it has {labels} class labels, the manifest {outputs}")
    owners = set(zip(owner_trees, owner_nodes, strict=True))
    if any(not 0 <= t < max(outputs, 1) for t in targets) or not owners <= known:
        raise _Refusal(f"a {prefix} weight points outside the outputs or the nodes")


# --------------------------------------------------------------------------- helpers


def _refuse(ref: str, file: str, reason: str) -> NoReturn:
    raise ArtifactRefused(ref, file, reason)


def _schema(schema: Mapping[str, Any], document: object, ref: str, file: str) -> None:
    import jsonschema  # type: ignore[import-untyped]

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document)
    )
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        _refuse(ref, file, f"{'at ' + where + ': ' if where else ''}{error.message}")
