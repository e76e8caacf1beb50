"""JSONata expressions (``{% … %}``) as Step Functions evaluates them, on jsonata-python.

jsonata-python is a maintained port of jsonata-java (the engine the JVM-based emulators use) and
passes the JSONata test suite; we add what AWS adds: the ``$states`` binding (``input``,
``context``, ``result``, ``errorOutput``), the workflow variables, and the functions
``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid`` and ``$parse``. Results come back as
plain JSON (JSONata numbers are doubles: an integral one is an ``int``, as AWS prints it).

Every failure is ``States.QueryEvaluationError`` with AWS's cause text naming the expression and
the field (``Output/result``, ``Assign/x``, ``Items`` …).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jsonata import Jsonata, jexception, utils
from jsonata.parser import Parser

from lakeline.workflow import errors as E
from lakeline.workflow.errors import StatesError

_NULL = utils.Utils.NULL_VALUE
_MAX_EXACT = 2**53
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def is_expression(value: Any) -> bool:
    """Whether a field value is a JSONata expression: a string ``{% … %}``."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def inner(value: str) -> str:
    """The expression inside ``{% … %}``, as AWS quotes it in causes."""
    return value[2:-2].strip()


class _Failure(Exception):
    """Raised by an AWS function: becomes the evaluation error's message."""


# ---- values in and out -----------------------------------------------------------------------
def to_jsonata(value: Any) -> Any:
    """JSON (None for null) as jsonata-python holds it (its null sentinel; None is undefined)."""
    if value is None:
        return _NULL
    if isinstance(value, dict):
        return {k: to_jsonata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonata(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    """A JSONata result as plain JSON: sequences as lists, integral doubles as ints."""
    if value is _NULL or value is None:
        return None
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        negative_zero = value == 0 and math.copysign(1, value) < 0
        if value.is_integer() and abs(value) <= _MAX_EXACT and not negative_zero:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def type_name(value: Any) -> str:
    """The JSON type name AWS uses in its causes."""
    if value is None or value is _NULL:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_function(value: Any) -> bool:
    return isinstance(value, Parser.Symbol | Jsonata.JFunctionCallable)


# ---- the functions AWS adds --------------------------------------------------------------------
def _number(value: Any, fn: str, pos: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Failure(f'T0410: Argument {pos} of function "{fn}" does not match function signature')
    return value


def _integer(value: Any, fn: str, pos: int) -> int:
    number = _number(value, fn, pos)
    if not float(number).is_integer():
        raise _Failure(f'T0410: Argument {pos} of function "{fn}" does not match function signature')
    return int(number)


def _partition(array: Any, size: Any) -> Any:
    if not isinstance(array, list):
        raise _Failure('T0410: Argument 1 of function "partition" does not match function signature')
    chunk = _integer(size, "partition", 2)
    if chunk <= 0:
        raise _Failure("The size of the partitions must be greater than zero")
    return [list(array[i:i + chunk]) for i in range(0, len(array), chunk)]


def _range(start: Any, end: Any, step: Any) -> Any:
    first, last, by = _integer(start, "range", 1), _integer(end, "range", 2), _integer(step, "range", 3)
    if by == 0:
        raise _Failure("The step of the range must not be zero")
    values = list(range(first, last + (1 if by > 0 else -1), by))
    if len(values) > 1000:
        raise _Failure("The range must not have more than 1000 items")
    sequence = utils.Utils.create_sequence()  # a sequence: one item comes out as the item itself
    sequence.extend(values)
    return sequence


def _hash(data: Any, algorithm: Any) -> str:
    if not isinstance(data, str):
        raise _Failure('T0410: Argument 1 of function "hash" does not match function signature')
    if algorithm not in _HASHES:
        raise _Failure(f"The hashing algorithm must be one of {', '.join(_HASHES)}")
    return hashlib.new(_HASHES[algorithm], data.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    if seed is None:
        return random.random()
    return random.Random(_integer(seed, "random", 1)).random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise _Failure('T0410: Argument 1 of function "parse" does not match function signature')
    try:
        return to_jsonata(json.loads(text))
    except ValueError as exc:
        raise _Failure(f"The input is not valid JSON: {exc}") from exc


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _partition, "range": _range, "hash": _hash, "random": _random, "uuid": _uuid,
    "parse": _parse,
}


# ---- evaluation ------------------------------------------------------------------------------
_LOCAL = threading.local()


def _compiled(expression: str) -> Jsonata:
    """The parsed expression, cached per thread (a Jsonata object is not shared across threads)."""
    cache: dict[str, Jsonata] | None = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    found = cache.get(expression)
    if found is None:
        found = Jsonata(expression)
        found.set_output_convert_nulls(False)
        for name, fn in _FUNCTIONS.items():
            found.register_lambda(name, fn)
        if len(cache) < 2048:
            cache[expression] = found
    return found


def _prefix(expression: str, field: str) -> str:
    return f"The JSONata expression '{expression}' specified for the field '{field}'"


def evaluate(text: str, states: Mapping[str, Any], variables: Mapping[str, Any], field: str) -> Any:
    """The value of ``{% … %}`` ``text`` with ``$states`` and the variables bound; raises
    ``States.QueryEvaluationError`` naming ``field`` when it fails or gives nothing."""
    expression = inner(text)
    bindings = {name: to_jsonata(value) for name, value in variables.items()}
    bindings["states"] = to_jsonata(dict(states))
    try:
        result = _compiled(expression).evaluate(bindings["states"].get("input"), bindings)
    except _Failure as exc:
        raise StatesError(E.QUERY_EVALUATION_ERROR,
                          f"{_prefix(expression, field)} threw an error during evaluation. {exc}") from exc
    except jexception.JException as exc:
        code = getattr(exc, "error", "")
        raise StatesError(E.QUERY_EVALUATION_ERROR,
                          f"{_prefix(expression, field)} threw an error during evaluation. "
                          f"{code}: {exc}".replace(". : ", ". ")) from exc
    except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:
        raise StatesError(E.QUERY_EVALUATION_ERROR,
                          f"{_prefix(expression, field)} threw an error during evaluation. {exc}") from exc
    if result is None:
        raise StatesError(E.QUERY_EVALUATION_ERROR,
                          f"{_prefix(expression, field)} returned nothing (undefined).")
    if _is_function(result):
        raise StatesError(E.QUERY_EVALUATION_ERROR,
                          f"{_prefix(expression, field)} returned an unsupported result type.")
    return to_json(result)


def evaluate_as(text: str, states: Mapping[str, Any], variables: Mapping[str, Any], field: str,
                expected: str) -> Any:
    """:func:`evaluate`, then check the result's JSON type (``array``, ``number`` …)."""
    value = evaluate(text, states, variables, field)
    if type_name(value) != expected:
        raise StatesError(
            E.QUERY_EVALUATION_ERROR,
            f"{_prefix(inner(text), field)} returned an unexpected result type. Expected "
            f"'{expected}', but was '{type_name(value)}' for value: "
            f"{json.dumps(value, separators=(',', ':'))}",
        )
    return value


def template(value: Any, states: Mapping[str, Any], variables: Mapping[str, Any], field: str) -> Any:
    """A JSONata template (``Arguments``, ``Output``, ``Assign`` …): every ``{% … %}`` string in it,
    at any depth, replaced by its value; everything else is literal."""
    if is_expression(value):
        return evaluate(value, states, variables, field)
    if isinstance(value, dict):
        return {k: template(v, states, variables, f"{field}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [template(v, states, variables, f"{field}[{i}]") for i, v in enumerate(value)]
    return value
