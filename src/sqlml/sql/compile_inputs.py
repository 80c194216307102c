"""The model's input matrix as SQL: the stored preprocessing of each feature column.

:func:`model_inputs` turns the :class:`~sqlml.udfs.preprocess.Preprocessor`'s columns into
one :class:`Input` per matrix column (numbers, booleans, category codes or one-hot
positions, date and timestamp parts), which the tree and linear compilers read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from sqlml.catalog.entities import arrow_type_from_string
from sqlml.errors import CompileNotSupported
from sqlml.sql.compile_exprs import cast, div, double, quoted_column, sub
from sqlml.udfs import preprocess
from sqlml.udfs.predict import LoadedModel

if TYPE_CHECKING:
    from sqlml.udfs.preprocess import Preprocessor


def _extract(part: str, node: exp.Expression) -> exp.Expression:
    return exp.Extract(this=exp.Var(this=part), expression=node)


def _date_part(part: str, column: exp.Expression) -> exp.Expression:
    """One of :data:`~sqlml.udfs.preprocess.DATE_PARTS` / ``TIMESTAMP_PARTS`` as double."""
    if part == "day_of_week":  # Arrow counts Monday = 0; ISODOW Monday = 1
        return sub(cast(_extract("ISODOW", column), "double"), double(1.0))
    if part == "days_since_epoch":
        return div(cast(_extract("EPOCH", column), "double"), double(86400.0))
    if part == "seconds_since_epoch":
        return cast(_extract("EPOCH", column), "double")
    field = {"day_of_year": "DOY"}.get(part, part.upper())
    return cast(_extract(field, column), "double")


@dataclass(frozen=True, slots=True)
class Input:
    """One column of the model's input matrix, as SQL.

    ``value()`` builds a fresh float expression each call (sqlglot nodes have one parent);
    ``column`` is the feature, for NULL tests and category comparisons; ``categories`` is
    set for a category's code (``codes`` encoding) or one-hot position (``category``).
    """

    value: Callable[[], exp.Expression]
    feature: str
    categories: tuple[str, ...] | None = None
    category: int | None = None


def model_inputs(model: LoadedModel) -> list[Input]:
    """The columns of the input matrix, in the preprocessor's order."""
    preprocessor: Preprocessor = model.preprocessor
    inputs: list[Input] = []
    for column in preprocessor.columns:
        name = column.name
        if column.kind == preprocess.NUMERIC:
            inputs.append(Input(_value(name, ("double",)), name))
        elif column.kind == preprocess.BOOL:
            inputs.append(Input(_value(name, ("int", "double")), name))
        elif column.kind == preprocess.CATEGORY:
            categories = column.categories or ()
            if preprocessor.encoding == "codes":
                inputs.append(Input(_no_value(model, name), name, categories))
            else:
                for i in range(len(categories)):
                    inputs.append(Input(_no_value(model, name), name, categories, i))
        elif column.kind == preprocess.DATE:
            for part in preprocess.DATE_PARTS:
                inputs.append(Input(_value(name, ("date",), part), name))
        else:
            trained = arrow_type_from_string(column.type)
            if trained.tz is not None:
                raise CompileNotSupported(
                    model.name,
                    f"feature {name!r} is a timestamp with a time zone ({column.type}); "
                    "compiled SQL handles timestamps without one",
                )
            for part in preprocess.TIMESTAMP_PARTS:
                inputs.append(Input(_value(name, ("timestamp",), part), name))
    return inputs


def _value(
    name: str, casts: tuple[str, ...], part: str | None = None
) -> Callable[[], exp.Expression]:
    """A builder of a column's value: cast in turn to ``casts``, then a date part."""

    def build() -> exp.Expression:
        node: exp.Expression = quoted_column(name)
        for type_ in casts:
            node = cast(node, type_)
        return node if part is None else _date_part(part, node)

    return build


def _no_value(model: LoadedModel, name: str) -> Callable[[], exp.Expression]:
    def fail() -> exp.Expression:
        raise CompileNotSupported(
            model.name, f"category feature {name!r} is used as a number by the model"
        )

    return fail
