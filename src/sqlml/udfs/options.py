"""Parse and check the options of CREATE MODEL.

Option names are case-insensitive. Besides sqlml's own options (``target``, ``task``,
``algorithm``, ``exclude``, ``test_size``, ``seed``) every option is a hyperparameter, named
as its library names it: for LightGBM any parameter name or alias LightGBM itself accepts
(from LightGBM's own alias table), for the scikit-learn models the estimator's
``get_params()`` keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlml.errors import InvalidOption

TASKS = ("classification", "regression")
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "lightgbm": TASKS,
    "linear": ("regression",),
    "logistic": ("classification",),
    "random_forest": TASKS,
}
GENERAL_OPTIONS = ("algorithm", "exclude", "seed", "target", "task", "test_size")
DEFAULT_TEST_SIZE = 0.2
DEFAULT_SEED = 42

#: LightGBM parameters sqlml sets itself (or that make no sense through SQL), with the reason.
_LIGHTGBM_RESERVED = {
    "task": "sqlml trains; use the option task = 'classification' | 'regression'",
    "seed": "use the option seed",
    "num_class": "sqlml sets it from the target's classes",
    "categorical_feature": "sqlml encodes string columns as categorical features itself",
    "early_stopping_round": "sqlml trains without a validation set",
    "data": "sqlml passes the training data itself",
    "valid": "sqlml passes the training data itself",
    "input_model": "sqlml does not read model files",
    "output_model": "sqlml does not write model files",
    "label_column": "use the option target",
    "weight_column": "weights are not supported yet",
    "group_column": "ranking is not supported yet",
    "ignore_column": "use the option exclude",
    "config": "sqlml does not read configuration files",
    "machine_list_filename": "distributed training is not supported",
}


@dataclass(frozen=True, slots=True)
class Options:
    """The parsed options of one CREATE MODEL statement.

    Attributes:
        target: the target column name, as given.
        task: ``classification``, ``regression`` or ``None`` to infer it from the target.
        algorithm: one of :data:`ALGORITHMS`.
        exclude: columns that are not features.
        test_size: the fraction of rows held out for the metrics.
        seed: the random seed of the split and the learner.
        hyperparameters: the remaining options, names lower-cased, not yet checked.
    """

    target: str
    task: str | None
    algorithm: str
    exclude: tuple[str, ...]
    test_size: float
    seed: int
    hyperparameters: dict[str, object] = field(default_factory=dict)


def parse_options(options: Mapping[str, object]) -> Options:
    """Split and check sqlml's own options; the rest are hyperparameters.

    Args:
        options: option name to Python scalar (``exclude`` may also be a list or tuple).

    Returns:
        The parsed :class:`Options`.

    Raises:
        InvalidOption: a missing target, a bad value, or the same option given twice.
    """
    lowered: dict[str, object] = {}
    for key, value in options.items():
        name = str(key).lower()
        if name in lowered:
            raise InvalidOption(name, "is given more than once")
        lowered[name] = value
    general = {k: lowered.pop(k) for k in GENERAL_OPTIONS if k in lowered}

    target = general.get("target")
    if target is None:
        raise InvalidOption(
            "target", "is required: name the column to predict, e.g. target = 'churned'"
        )
    if not isinstance(target, str) or not target:
        raise InvalidOption("target", f"must be a column name, got {target!r}")

    task = general.get("task")
    if task is not None:
        task = str(task).lower()
        if task not in TASKS:
            raise InvalidOption("task", f"unknown task {general['task']!r}", TASKS)

    algorithm = str(general.get("algorithm", "lightgbm")).lower()
    if algorithm not in ALGORITHMS:
        raise InvalidOption(
            "algorithm", f"unknown algorithm {general['algorithm']!r}", tuple(ALGORITHMS)
        )

    return Options(
        target=target,
        task=task,
        algorithm=algorithm,
        exclude=_exclude(general.get("exclude")),
        test_size=_test_size(general.get("test_size", DEFAULT_TEST_SIZE)),
        seed=_seed(general.get("seed", DEFAULT_SEED)),
        hyperparameters=lowered,
    )


def check_algorithm(algorithm: str, task: str) -> None:
    """Raise :class:`InvalidOption` if ``algorithm`` cannot do ``task``."""
    if task not in ALGORITHMS[algorithm]:
        fitting = [name for name, tasks in ALGORITHMS.items() if task in tasks]
        raise InvalidOption(
            "algorithm",
            f"{algorithm!r} does not do {task}; for {task} use one of {', '.join(fitting)}",
        )


def _exclude(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, list | tuple):
        names = [str(v) for v in value]
    else:
        raise InvalidOption("exclude", f"must be column names, got {value!r}")
    return tuple(n.strip() for n in names if n.strip())


def _test_size(value: object) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        size = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidOption("test_size", f"must be a number, got {value!r}") from None
    if not 0.0 < size < 1.0:
        raise InvalidOption("test_size", f"must be between 0 and 1 (exclusive), got {value!r}")
    return size


def _seed(value: object) -> int:
    seed: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().isdigit()
    ):
        seed = int(value)
    if seed is None or not 0 <= seed < 2**31:
        raise InvalidOption("seed", f"must be an integer from 0 to 2**31 - 1, got {value!r}")
    return seed


@cache
def lightgbm_aliases() -> dict[str, str]:
    """Every parameter name LightGBM accepts (canonical or alias) -> its canonical name.

    The table is LightGBM's own (``LGBM_DumpParamAliases`` in its C API), so it always
    matches the installed LightGBM.
    """
    from lightgbm.basic import _ConfigAliases

    table: dict[str, list[str]] = _ConfigAliases._get_all_param_aliases()
    aliases = {name: canonical for canonical, names in table.items() for name in names}
    aliases.update({canonical: canonical for canonical in table})
    return aliases


def lightgbm_params(hyperparameters: Mapping[str, object], task: str) -> dict[str, object]:
    """Check LightGBM hyperparameters and return them under their canonical names.

    Raises:
        InvalidOption: an unknown or reserved parameter, or one given under two names.
    """
    aliases = lightgbm_aliases()
    reserved = dict(_LIGHTGBM_RESERVED)
    if task == "classification":
        reserved["objective"] = "sqlml picks binary or multiclass from the target's classes"
    valid = sorted({c for c in aliases.values() if c not in reserved} | set(GENERAL_OPTIONS))
    params: dict[str, object] = {}
    for name, value in hyperparameters.items():
        canonical = aliases.get(name)
        if canonical is None:
            raise InvalidOption(name, "is not an option of sqlml or a LightGBM parameter", valid)
        if canonical in reserved:
            raise InvalidOption(name, f"cannot be set: {reserved[canonical]}")
        if canonical in params:
            raise InvalidOption(name, f"sets LightGBM's {canonical!r}, which is already set")
        params[canonical] = value
    return params


def sklearn_params(estimator: Any, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """Check scikit-learn hyperparameters against ``estimator.get_params()``.

    Returns:
        The parameters under the estimator's own spelling (e.g. ``C``).

    Raises:
        InvalidOption: an unknown parameter, or ``random_state`` (use ``seed``).
    """
    known = {name.lower(): name for name in estimator.get_params(deep=False)}
    known.pop("random_state", None)
    valid = sorted(set(known.values()) | set(GENERAL_OPTIONS))
    params: dict[str, object] = {}
    for name, value in hyperparameters.items():
        if name == "random_state":
            raise InvalidOption(name, "cannot be set: use the option seed")
        if name not in known:
            raise InvalidOption(
                name,
                f"is not an option of sqlml or a parameter of {type(estimator).__name__}",
                valid,
            )
        params[known[name]] = value
    return params
