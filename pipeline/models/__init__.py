"""Survival models: one module per estimator, tidy DataFrames out (docs/methods.md)."""

from pipeline.models.cox import CoxResult, fit_cox
from pipeline.models.km import KMResult, fit_km
from pipeline.models.logrank import logrank
from pipeline.models.ph_test import ph_test
from pipeline.models.rmst import rmst, rmst_difference

__all__ = [
    "CoxResult",
    "KMResult",
    "fit_cox",
    "fit_km",
    "logrank",
    "ph_test",
    "rmst",
    "rmst_difference",
]
