"""Parse and check the options of CREATE MODEL.

Option names are case-insensitive. Besides sqlml's own options (``target``, ``task``,
``algorithm``, ``exclude``, ``test_size``, ``seed``) every option is a hyperparameter, named
as its library names it: for LightGBM any parameter name or alias LightGBM itself accepts
(from LightGBM's own alias table), for the scikit-learn models the estimator's
``get_params()`` keys. Hyperparameter values are checked here, before the library sees them,
so a bad one is an :class:`~sqlml.errors.InvalidOption` naming it: LightGBM's numeric and
boolean parameters against their types and ranges (:data:`LIGHTGBM_VALUES`), scikit-learn's
against the estimator's own parameter constraints. An unknown option is an
:class:`~sqlml.errors.UnknownOption` that suggests the closest names; LightGBM's
prediction-time and file options (``predict_contrib``, ``output_model``...) are refused,
as training ignores them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlml.errors import InvalidOption, UnknownOption

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
    "label_column": "use the option target",
    "weight_column": "weights are not supported yet",
    "group_column": "ranking is not supported yet",
    "ignore_column": "use the option exclude",
    "config": "sqlml does not read configuration files",
    "machine_list_filename": "distributed training is not supported",
}

#: LightGBM parameters that only matter when a model predicts -> what to do instead (or
#: ""). Training ignores them, so they are refused rather than silently dropped.
_LIGHTGBM_PREDICTION = {
    "predict_raw_score": "predict_proba('model', *) gives the class probabilities",
    "predict_leaf_index": "",
    "predict_contrib": "feature_importance('model') gives each feature's gain",
    "predict_disable_shape_check": "predict binds features by name and checks them",
    "start_iteration_predict": "",
    "num_iteration_predict": "train with num_iterations instead",
    "pred_early_stop": "",
    "pred_early_stop_freq": "",
    "pred_early_stop_margin": "",
}

#: LightGBM parameters naming files (or file formats) its command line reads or writes;
#: sqlml reads the query's rows and keeps the model in its catalog, so they are refused.
_LIGHTGBM_FILES = frozenset(
    {
        "input_model", "output_model", "output_result", "convert_model",
        "convert_model_language", "save_binary", "snapshot_freq",
        "saved_feature_importance_type", "header", "two_round", "parser_config_file",
        "precise_float_parser",
    }
)  # fmt: skip
_LIGHTGBM_NOT_TRAINING = _LIGHTGBM_FILES | set(_LIGHTGBM_PREDICTION)

LIGHTGBM_PARAMETERS_URL = "https://lightgbm.readthedocs.io/en/latest/Parameters.html"


@dataclass(frozen=True, slots=True)
class ValueRule:
    """The type and range of a LightGBM parameter's value.

    Attributes:
        kind: ``int``, ``float`` or ``bool``.
        low: the smallest value allowed (``None``: no bound).
        low_open: whether ``low`` itself is excluded.
        high: the largest value allowed (``None``: no bound).
        high_open: whether ``high`` itself is excluded.
    """

    kind: str
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False

    def describe(self) -> str:
        """E.g. ``an integer greater than 1`` or ``a number in (0, 1]``."""
        noun = {"int": "an integer", "float": "a number", "bool": "true or false"}[self.kind]
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            relation = "greater than" if self.low_open else "at least"
            return f"{noun} {relation} {_number(self.low)}"
        if self.high is not None:
            relation = "less than" if self.high_open else "at most"
            return f"{noun} {relation} {_number(self.high)}"
        return noun


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_INT, _BOOL = ValueRule("int"), ValueRule("bool")
_POSITIVE_INT, _NATURAL = ValueRule("int", 0, True), ValueRule("int", 0)
_POSITIVE, _NON_NEGATIVE = ValueRule("float", 0, True), ValueRule("float", 0)
_FRACTION, _SHARE = ValueRule("float", 0, True, 1), ValueRule("float", 0, False, 1)

#: LightGBM's numeric and boolean parameters (canonical names) -> what a value must be, from
#: the checks of LightGBM's ``config.h``; sqlml needs at least one boosting round.
LIGHTGBM_VALUES: dict[str, ValueRule] = {
    "num_iterations": ValueRule("int", 1),
    "learning_rate": _POSITIVE,
    "num_leaves": ValueRule("int", 1, True, 131072),
    "num_threads": _INT,
    "max_depth": _INT,
    "min_data_in_leaf": _NATURAL,
    "min_sum_hessian_in_leaf": _NON_NEGATIVE,
    "bagging_fraction": _FRACTION,
    "pos_bagging_fraction": _FRACTION,
    "neg_bagging_fraction": _FRACTION,
    "bagging_freq": _NATURAL,
    "bagging_seed": _INT,
    "bagging_by_query": _BOOL,
    "feature_fraction": _FRACTION,
    "feature_fraction_bynode": _FRACTION,
    "feature_fraction_seed": _INT,
    "extra_trees": _BOOL,
    "extra_seed": _INT,
    "max_delta_step": ValueRule("float"),
    "lambda_l1": _NON_NEGATIVE,
    "lambda_l2": _NON_NEGATIVE,
    "linear_lambda": _NON_NEGATIVE,
    "min_gain_to_split": _NON_NEGATIVE,
    "drop_rate": _SHARE,
    "max_drop": _INT,
    "skip_drop": _SHARE,
    "xgboost_dart_mode": _BOOL,
    "uniform_drop": _BOOL,
    "drop_seed": _INT,
    "top_rate": _SHARE,
    "other_rate": _SHARE,
    "min_data_per_group": _POSITIVE_INT,
    "max_cat_threshold": _POSITIVE_INT,
    "cat_l2": _NON_NEGATIVE,
    "cat_smooth": _NON_NEGATIVE,
    "max_cat_to_onehot": _POSITIVE_INT,
    "top_k": _POSITIVE_INT,
    "monotone_penalty": _NON_NEGATIVE,
    "refit_decay_rate": _SHARE,
    "cegb_tradeoff": _NON_NEGATIVE,
    "cegb_penalty_split": _NON_NEGATIVE,
    "path_smooth": _NON_NEGATIVE,
    "max_bin": ValueRule("int", 1, True),
    "min_data_in_bin": _POSITIVE_INT,
    "bin_construct_sample_cnt": _POSITIVE_INT,
    "data_random_seed": _INT,
    "objective_seed": _INT,
    "is_unbalance": _BOOL,
    "scale_pos_weight": _POSITIVE,
    "sigmoid": _POSITIVE,
    "boost_from_average": _BOOL,
    "reg_sqrt": _BOOL,
    "alpha": _POSITIVE,
    "fair_c": _POSITIVE,
    "poisson_max_delta_step": _POSITIVE,
    "tweedie_variance_power": ValueRule("float", 1, False, 2, True),
    "multi_error_top_k": _POSITIVE_INT,
    "verbosity": _INT,
    "deterministic": _BOOL,
    "force_col_wise": _BOOL,
    "force_row_wise": _BOOL,
    "linear_tree": _BOOL,
    "use_missing": _BOOL,
    "zero_as_missing": _BOOL,
    "feature_pre_filter": _BOOL,
    "enable_bundle": _BOOL,
    "use_quantized_grad": _BOOL,
    "num_grad_quant_bins": ValueRule("int", 1, True),
    "stochastic_rounding": _BOOL,
    "quant_train_renew_leaf": _BOOL,
    "gpu_use_dp": _BOOL,
    "histogram_pool_size": ValueRule("float"),
}

_TRUE, _FALSE = ("true", "+", "1"), ("false", "-", "0")


@dataclass(frozen=True, slots=True)
class Options:
    """The parsed options of one CREATE MODEL statement.

    Attributes:
        target: the target column name, as given.
        task: ``classification``, ``regression`` or ``None`` to infer it from the target.
        algorithm: one of :data:`ALGORITHMS`.
        exclude: columns that are not features.
        test_size: the fraction of rows held out for the metrics; 0: none (the model is
            trained on every row and records no metrics).
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
        close = suggest("target", lowered)
        hint = f" (is {close[0]!r} a misspelling of it?)" if close else ""
        raise InvalidOption(
            "target", f"is required: name the column to predict, e.g. target = 'churned'{hint}"
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
    if not (0.0 <= size < 1.0 and math.isfinite(size)):
        raise InvalidOption(
            "test_size",
            "must be a share of the rows from 0 (no holdout: train on every row, record no "
            f"metrics) up to but not including 1, e.g. 0.2; got {value!r}",
        )
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
    params: dict[str, object] = {}
    for name, value in hyperparameters.items():
        canonical = aliases.get(name)
        if canonical is None:
            refused = set(reserved) | _LIGHTGBM_NOT_TRAINING
            raise UnknownOption(
                name,
                "a LightGBM parameter",
                _lightgbm_suggestions(name, aliases, refused),
                f"LightGBM's parameters are listed at {LIGHTGBM_PARAMETERS_URL}",
            )
        if canonical in _LIGHTGBM_NOT_TRAINING:
            raise InvalidOption(name, _not_training(name, canonical))
        if canonical in reserved:
            raise InvalidOption(name, f"cannot be set: {reserved[canonical]}")
        if canonical in params:
            raise InvalidOption(name, f"sets LightGBM's {canonical!r}, which is already set")
        params[canonical] = lightgbm_value(name, canonical, value)
    return params


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """The candidates closest to a mistyped option name, best first (at most three).

    >>> suggest("num_leafs", ["num_leaves", "learning_rate", "num_iterations"])
    ['num_leaves']
    """
    return difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.7)


def _lightgbm_suggestions(name: str, aliases: Mapping[str, str], refused: set[str]) -> list[str]:
    """sqlml's options and LightGBM's canonical parameter names close to ``name`` (an
    alias that is close suggests its canonical name), leaving out refused parameters."""
    usable = [alias for alias, canonical in aliases.items() if canonical not in refused]
    close = suggest(name, [*GENERAL_OPTIONS, *usable])
    return list(dict.fromkeys(aliases.get(c, c) for c in close))


def _not_training(name: str, canonical: str) -> str:
    """Why a LightGBM prediction-time or file option is refused at training."""
    known = f" (LightGBM's {canonical!r})" if canonical != name else ""
    if canonical in _LIGHTGBM_FILES:
        return (
            f"is an input/output option of LightGBM's command line{known}; sqlml trains on "
            "the query's rows and stores the model in its catalog, so leave it out"
        )
    hint = _LIGHTGBM_PREDICTION[canonical]
    return (
        f"is a prediction-time option of LightGBM{known} and means nothing when training; "
        "leave it out of CREATE MODEL" + (f" ({hint})" if hint else "")
    )


def lightgbm_value(name: str, canonical: str, value: object) -> object:
    """Check one LightGBM parameter's value; returns it as the Python type LightGBM reads.

    Args:
        name: the option as given (for the message).
        canonical: LightGBM's canonical name of the parameter.
        value: the option's value.

    Raises:
        InvalidOption: the value has the wrong type or is out of range.
    """
    rule = LIGHTGBM_VALUES.get(canonical)
    known = f" (LightGBM's {canonical!r})" if canonical != name else ""
    if value is None:
        raise InvalidOption(name, "is NULL; give it a value or leave the option out")
    if rule is None:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str | int | float) or (
                isinstance(item, float) and not math.isfinite(item)
            ):
                raise InvalidOption(name, f"has an invalid value {value!r}{known}")
        return value
    checked = _coerce(value, rule.kind)
    if checked is None or not _in_range(checked, rule):
        raise InvalidOption(name, f"must be {rule.describe()}{known}, got {value!r}")
    return checked


def _coerce(value: object, kind: str) -> int | float | bool | None:
    """``value`` as ``kind`` (numbers may be given as strings), or None if it is not one."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        return True if text in _TRUE else False if text in _FALSE else None
    if isinstance(value, bool | list):
        return None
    number: float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number):
        return None
    if kind == "int":
        if not float(number).is_integer():
            return None
        return int(number)
    return float(number)


def _in_range(value: float, rule: ValueRule) -> bool:
    if rule.kind == "bool":
        return True
    if rule.low is not None and (value < rule.low or (rule.low_open and value == rule.low)):
        return False
    return rule.high is None or not (value > rule.high or (rule.high_open and value == rule.high))


def sklearn_params(estimator: Any, hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """Check scikit-learn hyperparameters against ``estimator.get_params()``.

    Returns:
        The parameters under the estimator's own spelling (e.g. ``C``).

    Raises:
        InvalidOption: an unknown parameter, ``random_state`` (use ``seed``), or a value
            the estimator's parameter constraints do not allow.
    """
    known = {name.lower(): name for name in estimator.get_params(deep=False)}
    known.pop("random_state", None)
    learner = type(estimator).__name__
    params: dict[str, object] = {}
    for name, value in hyperparameters.items():
        if name == "random_state":
            raise InvalidOption(name, "cannot be set: use the option seed")
        if name not in known:
            close = suggest(name, [*GENERAL_OPTIONS, *known])
            raise UnknownOption(
                name,
                f"a parameter of {learner}",
                [known.get(c, c) for c in close],
                f"{learner}'s parameters are {', '.join(sorted(known.values()))}",
            )
        params[known[name]] = value
        _check_sklearn_value(estimator, known[name], value)
    return params


def _check_sklearn_value(estimator: Any, param: str, value: object) -> None:
    """Raise :class:`InvalidOption` unless the estimator's constraints allow ``value``."""
    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    probe = clone(estimator).set_params(**{param: value})
    try:
        probe._validate_params()
    except InvalidParameterError as exc:
        message = str(exc)
        found = re.match(r"The '\w+' parameter of (\w+) must be (.*)\. Got .* instead\.$", message)
        if found:
            message = f"must be {found.group(2)} for {found.group(1)}, got {value!r}"
        raise InvalidOption(param, message) from None
