"""SSM Parameter Store: the ParameterStore port on ``String`` parameters.

Names are validated as on the local backend and, in addition, against SSM's own rules, so a
bad name fails fast with :class:`UsageError` instead of a ``ValidationException``: only
``a-zA-Z0-9_.-`` and ``/``, at most 15 levels, and no first segment starting with ``aws`` or
``ssm``. Values must be 1..4096 characters (the standard tier). Versions are SSM's own: a put
returns the parameter's new version; a deleted and re-created parameter starts again at 1.

``prefix`` (optional, e.g. ``/lakeline/<lake>``) roots every name under a path, so several
lakes (or test runs) can share an account: the port's ``/a/b`` is stored as
``<prefix>/a/b`` and reported back as ``/a/b``.
"""

from __future__ import annotations

import re
from typing import Any

from lakeline.adapters.aws.session import error_code, translate_errors
from lakeline.adapters.local.params import validate_name
from lakeline.errors import ConditionFailed, UsageError
from lakeline.ports.params import ParameterStore

MAX_VALUE_CHARS = 4096
MAX_LEVELS = 15
_SSM_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")


def validate_ssm_name(name: str) -> str:
    """``validate_name`` plus SSM's character set, depth and reserved prefixes."""
    validate_name(name)
    if not _SSM_NAME.fullmatch(name):
        raise UsageError(
            f"parameter name {name!r}: SSM allows only letters a-z A-Z, digits, '_', '.', '-'"
            " and '/'"
        )
    if name.count("/") > MAX_LEVELS:
        raise UsageError(f"parameter name {name!r} has more than {MAX_LEVELS} levels")
    if name.split("/")[1].lower().startswith(("aws", "ssm")):
        raise UsageError(f"parameter name {name!r}: names under /aws* and /ssm* are reserved")
    return name


class SsmParameterStore(ParameterStore):
    """:class:`ParameterStore` on SSM Parameter Store. The constructor makes no API call."""

    def __init__(self, ssm_client: Any, *, prefix: str = "") -> None:
        self.ssm = ssm_client
        self.prefix = prefix.rstrip("/")
        if self.prefix:
            validate_ssm_name(self.prefix)

    def __repr__(self) -> str:
        return f"SsmParameterStore(prefix={self.prefix!r})"

    def _full(self, name: str) -> str:
        validate_name(name)
        return validate_ssm_name(self.prefix + name)

    def get(self, name: str) -> str | None:
        """GetParameter; None if the parameter does not exist."""
        from botocore.exceptions import ClientError

        full = self._full(name)
        try:
            with translate_errors(f"SSM GetParameter {full}"):
                resp = self.ssm.get_parameter(Name=full)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise
        return str(resp["Parameter"]["Value"])

    def put(self, name: str, value: str, *, overwrite: bool = True) -> int:
        """PutParameter (``String``); returns the new version. Without ``overwrite`` an
        existing name raises :class:`ConditionFailed`."""
        from botocore.exceptions import ClientError

        full = self._full(name)
        if not isinstance(value, str):
            raise UsageError(f"parameter {name}: value must be a string")
        if not 1 <= len(value) <= MAX_VALUE_CHARS:
            raise UsageError(
                f"parameter {name}: SSM values must be 1..{MAX_VALUE_CHARS} characters,"
                f" got {len(value)}"
            )
        try:
            with translate_errors(f"SSM PutParameter {full}"):
                resp = self.ssm.put_parameter(Name=full, Value=value, Type="String",
                                              Overwrite=overwrite)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ParameterAlreadyExists":
                raise ConditionFailed(f"parameter {name} already exists") from exc
            if code == "ValidationException":
                raise UsageError(f"parameter {name}: {exc}") from exc
            raise
        return int(resp["Version"])

    def get_by_path(self, path: str, *, recursive: bool = True) -> dict[str, str]:
        """GetParametersByPath (paginated): ``/a/b`` gives ``/a/b/x`` (and, recursively,
        ``/a/b/x/y``) but neither ``/a/b`` itself nor ``/a/bc``."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise UsageError(f"parameter path {path!r} must start with '/'")
        base = path.rstrip("/")
        api_path = (self.prefix + base) or "/"
        if api_path != "/":
            validate_ssm_name(api_path)
        below = api_path.rstrip("/") + "/"
        found: dict[str, str] = {}
        paginator = self.ssm.get_paginator("get_parameters_by_path")
        with translate_errors(f"SSM GetParametersByPath {api_path}"):
            for page in paginator.paginate(Path=api_path, Recursive=recursive):
                for param in page.get("Parameters", []):
                    full = str(param["Name"])
                    if not full.startswith(below):
                        continue
                    if not recursive and "/" in full[len(below):]:
                        continue
                    found[full[len(self.prefix):]] = str(param["Value"])
        return dict(sorted(found.items()))

    def delete(self, name: str) -> None:
        """DeleteParameter (absent is fine)."""
        from botocore.exceptions import ClientError

        full = self._full(name)
        try:
            with translate_errors(f"SSM DeleteParameter {full}"):
                self.ssm.delete_parameter(Name=full)
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                raise
