"""Deployment artefacts for AWS: the SAM template and the Lambda code package.

``lakeline deploy sam`` writes ``template.yaml`` (built by :mod:`lakeline.deploy.sam` from
Python data, checked by cfn-lint and checkov in the tests) and a ``README.md`` that walks
through deploy, workstation setup, cost and teardown. ``lakeline deploy package`` builds the
Lambda zip from manylinux wheels (:mod:`lakeline.deploy.package`). Nothing here talks to AWS.
"""

from __future__ import annotations

__all__: list[str] = []
