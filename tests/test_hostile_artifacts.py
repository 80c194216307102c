"""Artifacts planted in the catalog with consistent SHA-256s but a malformed structure.

Each test trains a real model with CREATE MODEL, takes its artifact from the catalog,
breaks one file, recomputes the manifest's hashes (so only the structure is wrong) and
registers the result as a new model. Predicting with it must raise an sqlml error, and the
process must go on serving. Without the checks, most of these kill the process with
SIGSEGV or SIGABRT inside LightGBM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sqlml
from sqlml.catalog import ModelVersion, VersionSpec, open_catalog
from sqlml.errors import ArtifactCrashed, ArtifactInvalid, ArtifactRefused
from sqlml.session import Session
from sqlml.udfs import artifact, checker

DATA = (
    "CREATE TABLE t AS SELECT CAST(value AS BIGINT) AS id, "
    "CAST(value % 7 AS DOUBLE) + value / 1000.0 AS x, CAST(value % 5 AS BIGINT) AS n, "
    "['red', 'green', 'blue'][value % 3 + 1] AS colour, "
    "CASE WHEN value % 3 = 0 THEN 'low' WHEN value % 7 < 3 THEN 'mid' ELSE 'high' END "
    "AS label FROM range(600) AS r(value)"
)
TRAIN = (
    "CREATE MODEL {name} OPTIONS (target = 'label', exclude = 'id', num_iterations = 4{more}) "
    "AS SELECT * FROM t"
)
PREDICT = "SELECT id, predict('{name}', *) AS p FROM t ORDER BY id LIMIT 20"


# --------------------------------------------------------------------------- helpers


def files_of(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(files: dict[str, bytes], *, key: bytes | None = None) -> bytes:
    """An artifact of ``files`` with the manifest's SHA-256s recomputed (and signed with
    ``key``), written here rather than by ``artifact.pack``, as a catalog writer would."""
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in files.items()
        if name not in ("manifest.json", "signature")
    }
    out = dict(files, **{"manifest.json": json.dumps(manifest, sort_keys=True).encode()})
    out.pop("signature", None)
    if key is not None:
        out["signature"] = artifact.sign(out["manifest.json"], key).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in out.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plant(uri: str, name: str, blob: bytes, like: ModelVersion) -> ModelVersion:
    """Register ``blob`` as a version of ``name``, with the catalog record of ``like``."""
    spec = VersionSpec(
        **{
            f.name: getattr(like, f.name)
            for f in dataclasses.fields(VersionSpec)
            if hasattr(like, f.name)
        }
    )
    with open_catalog(uri) as catalog:
        return catalog.register_version(name, spec, blob)


def edit_model(blob: bytes, edit: Callable[[str], str]) -> dict[str, bytes]:
    files = files_of(blob)
    files["model.txt"] = edit(files["model.txt"].decode()).encode()
    return files


def _trees(text: str) -> tuple[str, list[str], str]:
    """model.txt cut into the header, the tree blocks (as tree_sizes delimits them), the rest."""
    start = text.index("\nTree=0\n") + 1
    sizes = [int(s) for s in text.split("tree_sizes=")[1].split("\n")[0].split(" ")]
    blocks, offset = [], start
    for size in sizes:
        blocks.append(text[offset : offset + size])
        offset += size
    return text[:start], blocks, text[offset:]


def edit_tree(tree: int, key: str, edit: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    """An edit of ``key``'s values in one tree that keeps tree_sizes consistent."""

    def apply(text: str) -> str:
        header, blocks, rest = _trees(text)
        lines = blocks[tree].split("\n")
        i = next(n for n, line in enumerate(lines) if line.startswith(f"{key}="))
        lines[i] = f"{key}=" + " ".join(edit(lines[i][len(key) + 1 :].split(" ")))
        blocks[tree] = "\n".join(lines)
        sizes = " ".join(str(len(block)) for block in blocks)
        header = "\n".join(
            f"tree_sizes={sizes}" if line.startswith("tree_sizes=") else line
            for line in header.split("\n")
        )
        return header + "".join(blocks) + rest

    return apply


def first(value: str) -> Callable[[list[str]], list[str]]:
    return lambda values: [value, *values[1:]]


def first_categorical(values: list[str]) -> int:
    return next(i for i, v in enumerate(values) if int(v) & 1)


def bad_bitset(text: str) -> str:
    """Point tree 0's first categorical split at a bitset that does not exist."""
    _, blocks, _ = _trees(text)
    decisions = next(line for line in blocks[0].split("\n") if line.startswith("decision_type="))
    split = first_categorical(decisions.split("=")[1].split(" "))
    return edit_tree(0, "threshold", lambda v: [*v[:split], "7", *v[split + 1 :]])(text)


def edit_json(file: str, edit: Callable[[Any], Any]) -> Callable[[bytes], dict[str, bytes]]:
    def apply(blob: bytes) -> dict[str, bytes]:
        files = files_of(blob)
        files[file] = json.dumps(edit(json.loads(files[file]))).encode()
        return files

    return apply


def set_column(**changes: str) -> Callable[[Any], Any]:
    def apply(spec: Any) -> Any:
        spec["columns"][0].update(changes)
        return spec

    return apply


def cut_in_half(text: str) -> str:
    return text[: len(text) // 2]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def catalog_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'catalog.db'}"
    with open_catalog(uri, migrate=True):
        pass
    return uri


@pytest.fixture(scope="module")
def session(catalog_uri: str) -> Iterator[Session]:
    """A DuckDB session over a SQLite catalog, with table ``t`` and model ``good``."""
    with sqlml.connect(engine="duckdb", catalog=catalog_uri) as opened:
        opened.sql(DATA)
        opened.sql(TRAIN.format(name="good", more=""))
        yield opened


@pytest.fixture(scope="module")
def good(session: Session) -> tuple[ModelVersion, bytes]:
    version = session.catalog.resolve("good")
    return version, session.catalog.load_artifact("good", version.version)


_planted = itertools.count()


@pytest.fixture
def bad_name() -> str:
    """A model name no other test uses."""
    return f"bad{next(_planted)}"


# --------------------------------------------------------------------------- malformed files

CASES: list[tuple[str, Callable[[bytes], dict[str, bytes]], str]] = [
    ("cut-in-half", lambda b: edit_model(b, cut_in_half), "model.txt: .*cut short"),
    (
        "split-feature",
        lambda b: edit_model(b, edit_tree(0, "split_feature", first("999"))),
        r"model.txt: Tree=0: split_feature value 999 is not in \[0, 3\)",
    ),
    (
        "left-child-out-of-range",
        lambda b: edit_model(b, edit_tree(1, "left_child", first("50"))),
        r"Tree=1: left_child value 50 is not in",
    ),
    (
        "left-child-cycle",
        lambda b: edit_model(b, edit_tree(0, "left_child", first("0"))),
        "Tree=0: split 0's child 0 makes a cycle",
    ),
    (
        "threshold-nan",
        lambda b: edit_model(b, edit_tree(0, "threshold", first("nan"))),
        "threshold value 'nan' is not a number",
    ),
    (
        "leaf-value-infinite",
        lambda b: edit_model(b, edit_tree(0, "leaf_value", first("1e400"))),
        "Tree=0: leaf_value value '1e400' is not finite",
    ),
    (
        "threshold-not-a-number",
        lambda b: edit_model(b, edit_tree(0, "threshold", first("0x1p3"))),
        "threshold value '0x1p3' is not a number",
    ),
    (
        "leaf-value-missing",
        lambda b: edit_model(b, edit_tree(2, "leaf_value", lambda v: v[:-1])),
        "Tree=2: leaf_value has .* values, num_leaves requires",
    ),
    (
        "decision-type",
        lambda b: edit_model(b, edit_tree(0, "decision_type", first("99"))),
        r"decision_type value 99 is not in \[0, 16\)",
    ),
    ("categorical-bitset", lambda b: edit_model(b, bad_bitset), "names bitset 7.0, of"),
    (
        "num-class-0",
        lambda b: edit_model(b, lambda t: t.replace("num_class=3\n", "num_class=0\n", 1)),
        "model.txt: num_class=0 .* needs 3",
    ),
    (
        "tree-sizes",
        lambda b: edit_model(b, lambda t: t.replace("tree_sizes=", "tree_sizes=9", 1)),
        "Tree=0: its size in tree_sizes is not the size of its block",
    ),
    (
        "max-feature-idx",
        lambda b: edit_model(b, lambda t: t.replace("max_feature_idx=2", "max_feature_idx=9")),
        "max_feature_idx=9, but preprocess.json gives 3 input columns",
    ),
    (
        "objective",
        lambda b: edit_model(b, lambda t: t.replace("multiclass num_class:3", "binary", 1)),
        "objective 'binary' is not one of a multiclass model",
    ),
    (
        "trailer",
        lambda b: edit_model(b, lambda t: t.replace("[boosting: gbdt]", '[boosting: "x"]')),
        "unexpected line",
    ),
    (
        "classes-disagree",
        edit_json("manifest.json", lambda m: {**m, "classes": m["classes"][:2]}),
        "model.txt: num_class=3 .* 2 classes needs 1",
    ),
    (
        "manifest-algorithm",
        edit_json("manifest.json", lambda m: {**m, "algorithm": "linear"}),
        "manifest.json: algorithm 'linear' is not stored as 'lightgbm'",
    ),
    (
        "manifest-classes-type",
        edit_json("manifest.json", lambda m: {**m, "classes": {"a": 1}}),
        "manifest.json: at classes: .* is not of type 'array'",
    ),
    (
        "preprocess-list",
        edit_json("preprocess.json", lambda spec: [spec]),
        "preprocess.json: .* is not of type 'object'",
    ),
    (
        "preprocess-kind",
        edit_json("preprocess.json", set_column(kind="timestamp")),
        "preprocess.json: columns/0: a double column is not a timestamp",
    ),
    (
        "preprocess-type",
        edit_json("preprocess.json", set_column(type="no such type")),
        "preprocess.json: columns/0: 'no such type' is not an Arrow type",
    ),
    (
        "preprocess-columns",
        edit_json("preprocess.json", lambda spec: {**spec, "columns": spec["columns"][:2]}),
        "max_feature_idx=2, but preprocess.json gives 2 input columns",
    ),
]


@pytest.mark.parametrize(("corrupt", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_artifact_is_refused(
    session: Session,
    catalog_uri: str,
    good: tuple[ModelVersion, bytes],
    bad_name: str,
    corrupt: Callable[[bytes], dict[str, bytes]],
    message: str,
) -> None:
    version, blob = good
    plant(catalog_uri, bad_name, rezip(corrupt(blob)), version)
    with pytest.raises(ArtifactRefused, match=message) as info:
        session.sql(PREDICT.format(name=bad_name))
    assert info.value.ref == f"{bad_name}@1"
    assert info.value.name == bad_name
    assert info.value.version == 1
    assert f"model '{bad_name}@1' is refused" in str(info.value)
    # The process goes on, and so does the session.
    assert session.sql(PREDICT.format(name="good")).num_rows == 20


def test_deeply_nested_json_is_an_sqlml_error(
    session: Session, catalog_uri: str, good: tuple[ModelVersion, bytes], bad_name: str
) -> None:
    version, blob = good
    files = files_of(blob)
    files["preprocess.json"] = b"[" * 100_000 + b"]" * 100_000
    plant(catalog_uri, bad_name, rezip(files), version)
    with pytest.raises(ArtifactInvalid, match=f"'{bad_name}@1'.*preprocess.json is not JSON"):
        session.sql(PREDICT.format(name=bad_name))


def test_oversized_file_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch,
    session: Session,
    catalog_uri: str,
    good: tuple[ModelVersion, bytes],
    bad_name: str,
) -> None:
    """A zip bomb: a file that inflates past the limit is refused before it is inflated
    (the limit is lowered so the test need not inflate a gigabyte)."""
    monkeypatch.setattr(artifact, "MAX_FILE_SIZE", 100_000)
    version, blob = good
    files = files_of(blob)
    files["model.txt"] = b"\n" * 100_001
    plant(catalog_uri, bad_name, rezip(files), version)
    with pytest.raises(ArtifactRefused, match=r"model.txt: it is larger than"):
        session.sql(PREDICT.format(name=bad_name))


def test_onnx_artifact_is_checked(session: Session, catalog_uri: str, bad_name: str) -> None:
    import onnx

    session.sql(
        "CREATE MODEL lin OPTIONS (target = 'label', exclude = 'id', algorithm = 'logistic') "
        "AS SELECT * FROM t"
    )
    version = session.catalog.resolve("lin")
    files = files_of(session.catalog.load_artifact("lin", version.version))
    graph = onnx.load_from_string(files["model.onnx"])
    graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value += 1
    files["model.onnx"] = graph.SerializeToString()
    plant(catalog_uri, bad_name, rezip(files), version)
    with pytest.raises(ArtifactRefused, match=r"model.onnx: its input is not a \(double, n x"):
        session.sql(PREDICT.format(name=bad_name))
    graph = onnx.load_from_string(files_of(session.catalog.load_artifact("lin", 1))["model.onnx"])
    graph.graph.node[0].op_type = "Loop"
    files["model.onnx"] = graph.SerializeToString()
    plant(catalog_uri, bad_name, rezip(files), version)
    with pytest.raises(ArtifactRefused, match=r"operator \.Loop is not one sqlml writes"):
        session.sql(PREDICT.format(name=f"{bad_name}@2"))
    assert session.sql(PREDICT.format(name="lin")).num_rows == 20


# --------------------------------------------------------------------------- the checker process


def test_a_sound_artifact_from_the_catalog_is_checked_once_then_loads(
    session: Session, catalog_uri: str, good: tuple[ModelVersion, bytes]
) -> None:
    version, blob = good
    # The model this process trained needs no checker process.
    assert hashlib.sha256(blob).hexdigest() not in checker._verdicts
    copy = rezip(files_of(blob))  # the same model, in bytes this process did not write
    assert not artifact.packed_here(hashlib.sha256(copy).hexdigest())
    plant(catalog_uri, "copy", copy, version)
    assert session.sql(PREDICT.format(name="copy")) == session.sql(PREDICT.format(name="good"))
    assert checker._verdicts[hashlib.sha256(copy).hexdigest()] is None


@pytest.mark.parametrize(
    ("edit", "signals"),
    [
        (cut_in_half, {"SIGSEGV", "SIGBUS", "SIGABRT"}),
        # tree_sizes no longer matches the edited tree: LightGBM aborts.
        (lambda t: t.replace("split_feature=0", "split_feature=999", 1), {"SIGABRT", "SIGSEGV"}),
    ],
    ids=["cut-in-half", "split-feature"],
)
def test_a_native_crash_kills_only_the_checker_process(
    good: tuple[ModelVersion, bytes], edit: Callable[[str], str], signals: set[str]
) -> None:
    """The checker loads what it is given, unvalidated: a model that crashes LightGBM
    kills the child, and the parent raises."""
    unpacked = artifact.unpack(good[1], "good@1")
    broken = artifact.Artifact(
        unpacked.manifest, unpacked.preprocess, edit(unpacked.model.decode()).encode()
    )
    with pytest.raises(ArtifactCrashed, match="'bad@1' crashed the checker process") as info:
        checker.probe(broken, "bad@1")
    assert info.value.signal in signals
    assert f"killed it with {info.value.signal}" in str(info.value)
    assert info.value.file == "model.txt"


def test_a_crash_verdict_is_kept_for_the_process(good: tuple[ModelVersion, bytes]) -> None:
    unpacked = artifact.unpack(good[1], "good@1")
    broken = artifact.Artifact(
        unpacked.manifest, unpacked.preprocess, cut_in_half(unpacked.model.decode()).encode()
    )
    stand_in = b"bytes of an artifact this process never packed: " + unpacked.model[:64]
    for _ in range(2):
        with pytest.raises(ArtifactCrashed, match="crashed the checker process"):
            checker.check_once(stand_in, broken, "bad@1")
    verdict = checker._verdicts[hashlib.sha256(stand_in).hexdigest()]
    assert verdict is not None
    assert verdict[0] == "model.txt"


def test_a_checker_timeout_refuses_the_artifact(good: tuple[ModelVersion, bytes]) -> None:
    """A split whose child is itself makes LightGBM loop forever on that row."""
    unpacked = artifact.unpack(good[1], "good@1")
    looping = edit_tree(0, "left_child", first("0"))(unpacked.model.decode()).encode()
    broken = artifact.Artifact(unpacked.manifest, unpacked.preprocess, looping)
    with pytest.raises(ArtifactCrashed, match="did not finish within 3 s") as info:
        checker.probe(broken, "bad@1", timeout=3)
    assert info.value.signal is None


# --------------------------------------------------------------------------- signing


def test_signed_artifacts(
    monkeypatch: pytest.MonkeyPatch, session: Session, catalog_uri: str
) -> None:
    monkeypatch.setenv(artifact.SIGNING_KEY_ENV, "key one")
    session.sql(TRAIN.format(name="signed", more=""))
    version = session.catalog.resolve("signed")
    blob = session.catalog.load_artifact("signed", version.version)
    assert (
        files_of(blob)["signature"]
        == artifact.sign(files_of(blob)["manifest.json"], b"key one").encode()
    )
    assert session.sql(PREDICT.format(name="signed")).num_rows == 20

    files = files_of(blob)
    plant(catalog_uri, "unsigned", rezip(files), version)
    with pytest.raises(ArtifactRefused, match=r"'unsigned@1' is refused: signature: .*unsigned"):
        session.sql(PREDICT.format(name="unsigned"))
    plant(catalog_uri, "forged", rezip(files, key=b"key two"), version)
    with pytest.raises(ArtifactRefused, match="signature: it does not match SQLML_SIGNING_KEY"):
        session.sql(PREDICT.format(name="forged"))
    # A signed artifact with a changed file and recomputed hashes no longer matches.
    files["model.txt"] = files["model.txt"].replace(b"shrinkage=1\n", b"shrinkage=2\n", 1)
    tampered = rezip(files)
    tampered_files = files_of(tampered)
    tampered_files["signature"] = files["signature"]
    plant(catalog_uri, "tampered", rezip_keep_signature(tampered_files), version)
    with pytest.raises(ArtifactRefused, match="signed with another key or changed"):
        session.sql(PREDICT.format(name="tampered"))

    monkeypatch.setenv(artifact.SIGNING_KEY_ENV, "key two")
    assert session.sql(PREDICT.format(name="forged")).num_rows == 20


def rezip_keep_signature(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------- PostgreSQL, server


@pytest.mark.postgres
def test_planted_artifact_in_a_postgres_catalog(postgres_uri: str) -> None:
    with open_catalog(postgres_uri, migrate=True):
        pass
    with sqlml.connect(engine="duckdb", catalog=postgres_uri) as session:
        session.sql(DATA)
        session.sql(TRAIN.format(name="good", more=""))
        version = session.catalog.resolve("good")
        blob = session.catalog.load_artifact("good", version.version)
        plant(postgres_uri, "bad", rezip(edit_model(blob, cut_in_half)), version)
        with pytest.raises(ArtifactRefused, match=r"'bad@1' is refused: model.txt: .*cut short"):
            session.sql(PREDICT.format(name="bad"))
        assert session.sql(PREDICT.format(name="good")).num_rows == 20


def test_served_predict_with_a_planted_artifact_fails_and_the_server_keeps_serving(
    tmp_path: Path,
    catalog_uri: str,
    session: Session,
    good: tuple[ModelVersion, bytes],
    bad_name: str,
) -> None:
    import adbc_driver_flightsql.dbapi as adbc

    from tests.server.conftest import query, start_server, stop_server

    version, blob = good
    plant(catalog_uri, bad_name, rezip(edit_model(blob, cut_in_half)), version)
    server = start_server(tmp_path, "--auth", "u:p", catalog=catalog_uri)
    try:
        clients = [
            adbc.connect(server.uri, db_kwargs={"username": "u", "password": "p"}, autocommit=True)
            for _ in range(2)
        ]
        try:
            for client in clients:
                query(client, DATA)
            with pytest.raises(adbc.Error, match=f"ArtifactRefused: .*'{bad_name}@1' is refused"):
                query(clients[0], PREDICT.format(name=bad_name))
            assert query(clients[1], PREDICT.format(name="good")).num_rows == 20
            assert query(clients[0], PREDICT.format(name="good")).num_rows == 20
            assert server.process.poll() is None
        finally:
            for client in clients:
                client.close()
    finally:
        stop_server(server)
