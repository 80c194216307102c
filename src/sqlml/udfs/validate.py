"""Check an artifact's structure before any native library reads it.

An artifact's SHA-256 proves its files are the ones registered, not that they are shaped
as sqlml writes them, and LightGBM and ONNX Runtime trust the files they are given: a
LightGBM model cut in half, or one whose split names a feature the model does not have,
crashes the process that loads it. So every file is checked here first, in Python:

* ``manifest.json`` and ``preprocess.json`` against JSON Schemas (:data:`MANIFEST_SCHEMA`,
  :data:`PREPROCESS_SCHEMA`), then for what a schema cannot say (the manifest, the
  preprocessing and the model agree with each other; numbers are finite).
* ``model.txt`` is parsed line by line as LightGBM's text format, each tree checked to be
  a tree of the model's width (:mod:`sqlml.udfs.lightgbm_text`).
* ``model.onnx`` is parsed as protobuf (the onnx package's upb parser), and must use only
  the operators sqlml's converters emit, hold no subgraphs or external data, take one
  ``(n, width)`` input, and keep its tree ensembles' and matrices' indices in range.

Each refusal is an :class:`~sqlml.errors.ArtifactRefused` naming the file and the fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

from sqlml.catalog.entities import arrow_type_from_string
from sqlml.errors import ArtifactRefused
from sqlml.udfs import lightgbm_text, preprocess

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
        lightgbm_text.check_text(text, width, task, k)
    except lightgbm_text.Malformed as exc:
        _refuse(ref, "model.txt", str(exc))


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
