"""Reject reason codes: every record that does not load carries exactly one of these."""

from __future__ import annotations

MALFORMED_JSON = "MALFORMED_JSON"  # the line is not valid JSON
ENCODING_ERROR = "ENCODING_ERROR"  # the line is not valid UTF-8
NOT_AN_OBJECT = "NOT_AN_OBJECT"  # valid JSON, but not an object
DUPLICATE_FIELD = "DUPLICATE_FIELD"  # a JSON object repeats a key the pipeline reads ({"a": 1, "a": 2})
SCHEMA_ERROR = "SCHEMA_ERROR"  # missing / unknown record_type, or a file without required columns
NULL_VALUE_ERROR = "NULL_VALUE_ERROR"  # a required value is missing
TYPE_ERROR = "TYPE_ERROR"  # a value cannot be cast to its silver type (NaN, Infinity, 1e400 included)
TIMESTAMP_ERROR = "TIMESTAMP_ERROR"  # a timestamp that does not parse
CURRENCY_ERROR = "CURRENCY_ERROR"
DUPLICATE_FAILURE = "DUPLICATE_FAILURE"
MAX_ATTEMPTS = "MAX_ATTEMPTS"
FACTOR_NOT_FOUND = "FACTOR_NOT_FOUND"  # carbon: no emission factor for (category, activity)
UNIT_MISMATCH = "UNIT_MISMATCH"  # carbon: the record's units cannot be converted to the factor's

ALL = (
    MALFORMED_JSON,
    ENCODING_ERROR,
    NOT_AN_OBJECT,
    DUPLICATE_FIELD,
    SCHEMA_ERROR,
    NULL_VALUE_ERROR,
    TYPE_ERROR,
    TIMESTAMP_ERROR,
    CURRENCY_ERROR,
    DUPLICATE_FAILURE,
    MAX_ATTEMPTS,
    FACTOR_NOT_FOUND,
    UNIT_MISMATCH,
)
