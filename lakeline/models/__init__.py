"""SQL models: ``HOME/models/NAME.sql`` holds one query, materialised as the table ``gold.NAME``.

- :mod:`~lakeline.models.spec`: find and parse the files (sqlglot), what each one reads;
- :mod:`~lakeline.models.plan`: check them against the lake's tables, order them;
- :mod:`~lakeline.models.inputs`: the tables a model may read and their fingerprints;
- :mod:`~lakeline.models.run`: materialise the due ones (atomic replace, state, lineage);
- :mod:`~lakeline.models.listing`: every file with its problems and last materialisation.
"""

from __future__ import annotations

from lakeline.models.listing import Checked, check_models, model_status
from lakeline.models.plan import plan, problems
from lakeline.models.run import ModelResult, run_models
from lakeline.models.spec import Model, Ref, discover, parse_model

__all__ = ["Checked", "Model", "ModelResult", "Ref", "check_models", "discover", "model_status",
           "parse_model", "plan", "problems", "run_models"]
