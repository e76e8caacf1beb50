"""Parameter store contract: SSM Parameter Store semantics."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import pytest

from lakeline.errors import ConditionFailed, UsageError
from lakeline.ports import ParameterStore
from tests.contract.store_backends import moto_endpoint, param_store, skip_backend  # noqa: F401


def test_put_get_versions(param_store: ParameterStore) -> None:
    assert param_store.get("/lakeline/watermark") is None
    assert param_store.put("/lakeline/watermark", "2024-01-01") == 1
    assert param_store.put("/lakeline/watermark", "2024-01-02") == 2
    assert param_store.put("/lakeline/watermark", "2024-01-02") == 3
    assert param_store.get("/lakeline/watermark") == "2024-01-02"


def test_no_overwrite(param_store: ParameterStore) -> None:
    assert param_store.put("/p", "a", overwrite=False) == 1
    with pytest.raises(ConditionFailed):
        param_store.put("/p", "b", overwrite=False)
    assert param_store.get("/p") == "a"


def test_names_must_be_absolute(param_store: ParameterStore) -> None:
    for bad in ["relative/name", "", "name"]:
        with pytest.raises(UsageError):
            param_store.put(bad, "x")
        with pytest.raises(UsageError):
            param_store.get(bad)
    with pytest.raises(UsageError):
        param_store.get_by_path("no/slash")


def test_get_by_path(param_store: ParameterStore) -> None:
    values = {
        "/app/a": "1",
        "/app/b": "2",
        "/app/sub/c": "3",
        "/app/sub/deep/d": "4",
        "/application/x": "5",
        "/other/y": "6",
    }
    for name, value in values.items():
        param_store.put(name, value)
    assert param_store.get_by_path("/app") == {
        "/app/a": "1", "/app/b": "2", "/app/sub/c": "3", "/app/sub/deep/d": "4"
    }
    assert param_store.get_by_path("/app/") == param_store.get_by_path("/app")
    assert param_store.get_by_path("/app", recursive=False) == {"/app/a": "1", "/app/b": "2"}
    assert param_store.get_by_path("/app/sub", recursive=False) == {"/app/sub/c": "3"}
    assert param_store.get_by_path("/") == values
    assert param_store.get_by_path("/", recursive=False) == {}
    assert param_store.get_by_path("/nothing") == {}


def test_delete(param_store: ParameterStore) -> None:
    param_store.put("/d", "x")
    param_store.delete("/d")
    assert param_store.get("/d") is None
    param_store.delete("/d")  # absent is fine
    assert param_store.put("/d", "y", overwrite=False) == 1


def test_unicode_values(param_store: ParameterStore) -> None:
    skip_backend(param_store, "aws", "SSM parameter names allow only a-zA-Z0-9_.-/ (the adapter"
                 " refuses '/données/été'); unicode values are tested in tests/integration")
    param_store.put("/données/été", "værdi ✓\nline 2")
    assert param_store.get("/données/été") == "værdi ✓\nline 2"
    assert param_store.get_by_path("/données") == {"/données/été": "værdi ✓\nline 2"}
