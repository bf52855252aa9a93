"""The exceptions that mean "the input or a setting needs fixing", not "relief has a bug".

The CLI and the DAG edge turn these into one clear line; anything else keeps its traceback.
"""

from __future__ import annotations


class NoResultsError(ValueError):
    """There is nothing to analyse (no responders, or no successful run yet)."""


def user_errors() -> tuple[type[Exception], ...]:
    """Imported lazily: the validation modules pull in Great Expectations."""
    from pipeline.analysis_params import AnalysisParamsError
    from pipeline.config import ConfigError
    from pipeline.gx_runner import SchemaError
    from pipeline.sources.landing import DeliveryError
    from pipeline.validate import ValidationBlocked

    return (
        AnalysisParamsError,
        ConfigError,
        DeliveryError,
        SchemaError,
        ValidationBlocked,
        NoResultsError,
        FileNotFoundError,
    )
