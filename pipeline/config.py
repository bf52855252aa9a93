"""Configuration, read in one place and passed down as small typed values.

Every environment variable relief honours is read here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.pseudonym import key_from_env
from pipeline.schema import ANALYSES
from pipeline.strata import KM_STRATA

DEFAULT_WAREHOUSE_URL = "sqlite:///relief_warehouse.db"
# The demo key is public on purpose: it only ever hashes synthetic identifiers.
DEMO_PSEUDONYM_KEY = "relief-demo-key-not-secret"


class ConfigError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class OutcomeDefinition:
    """How episodes, response and pain return are derived (design.md, defaults in bold there).

    The 30 % threshold is IMMPACT's "moderately important" change in chronic pain
    (Dworkin et al., J Pain 2008;9:105-121); 50 % ("substantial") and an absolute
    2-point drop are the usual alternatives.
    """

    series_gap_days: float = 7.0
    baseline_window_days: float = 14.0
    response_threshold: float = 0.30  # relative reduction from baseline
    response_rule: str = "relative"  # relative | absolute
    absolute_threshold: float = 2.0  # points, used when response_rule == "absolute"

    def __post_init__(self) -> None:
        if self.response_rule not in ("relative", "absolute"):
            raise ConfigError(
                f"response_rule must be 'relative' or 'absolute', got {self.response_rule!r}"
            )
        if not 0 < self.response_threshold < 1:
            raise ConfigError("response_threshold must be a fraction between 0 and 1, e.g. 0.3")
        if self.series_gap_days < 0 or self.baseline_window_days <= 0:
            raise ConfigError("series_gap_days must be >= 0 and baseline_window_days > 0")


@dataclass(frozen=True)
class ModelSettings:
    """Which survival models to fit and how; ``analyses`` chooses what is fitted at all."""

    ties: str = "efron"  # efron | breslow
    horizon_days: float = 90.0  # RMST horizon
    landmarks_days: tuple[float, ...] = (1.0, 7.0, 30.0, 90.0)
    covariates: tuple[str, ...] = (
        "route",
        "is_series",
        "dose_mg_per_kg",
        "infusion_hours",
        "n_comorbidities",
        "baseline_score",
    )
    km_groups: tuple[str, ...] = KM_STRATA  # see pipeline/strata.py
    analyses: tuple[str, ...] = ANALYSES

    def __post_init__(self) -> None:
        if self.ties not in ("efron", "breslow"):
            raise ConfigError(f"ties must be 'efron' or 'breslow', got {self.ties!r}")
        unknown = sorted(set(self.analyses) - set(ANALYSES))
        if unknown:
            raise ConfigError(f"unknown analyses {unknown}; choose from {list(ANALYSES)}")


@dataclass(frozen=True)
class RefitPolicy:
    """When a nightly run refits the survival models and re-renders the report.

    A night adds ~1 % of episodes, which barely moves a survival estimate, so the models
    are refitted only when the episodes new or re-derived since the last fit exceed
    ``min_new_share`` of the episodes that fit used, when that fit is older than
    ``max_age_days``, when the outcome, model or report settings changed, or on request
    (``always``, the DAG param ``refit``). Otherwise the run keeps the last fit's results
    and report (status ``no_refit``). See docs/decisions.md, "Incremental nights".
    """

    min_new_share: float = 0.05  # RELIEF_REFIT_SHARE
    max_age_days: float = 7.0  # RELIEF_REFIT_MAX_DAYS
    always: bool = False  # RELIEF_REFIT=1: refit on every run

    def __post_init__(self) -> None:
        if not 0 <= self.min_new_share <= 1:
            raise ConfigError(
                f"RELIEF_REFIT_SHARE must be a fraction between 0 and 1, e.g. 0.05, "
                f"got {self.min_new_share!r}"
            )
        if self.max_age_days < 0:
            raise ConfigError(
                f"RELIEF_REFIT_MAX_DAYS must be a number of days >= 0, got {self.max_age_days!r}"
            )


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides its input."""

    warehouse_url: str = DEFAULT_WAREHOUSE_URL
    report_dir: Path = Path("reports")
    pseudonym_key: str = DEMO_PSEUDONYM_KEY
    demo: bool = False
    blocking_failure_share: float = 0.05
    min_cell_count: int = 11
    outcome: OutcomeDefinition = field(default_factory=OutcomeDefinition)
    models: ModelSettings = field(default_factory=ModelSettings)
    refit: RefitPolicy = field(default_factory=RefitPolicy)
    # Re-derive every patient's episodes instead of only those touched by new deliveries
    # (RELIEF_FULL_DERIVE=1, the DAG param ``full_derive``); see pipeline/derive_stage.py.
    full_derive: bool = False

    def parameters(self) -> dict[str, Any]:
        """The run parameters recorded in model_runs (never the key itself)."""
        params = asdict(self)
        params.pop("pseudonym_key")
        params["report_dir"] = str(self.report_dir)
        return params


def from_env(
    *,
    warehouse_url: str | None = None,
    report_dir: str | Path | None = None,
    demo: bool = False,
    outcome: OutcomeDefinition | None = None,
    models: ModelSettings | None = None,
    refit: RefitPolicy | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Build Settings from explicit values, falling back to RELIEF_* environment variables.

    A missing pseudonymisation key is an error outside the demo: hashing real
    identifiers with a published key would make them re-identifiable.
    """
    env = dict(os.environ) if env is None else env
    demo = demo or env.get("RELIEF_DEMO") == "1"
    key = key_from_env(env)
    if not key:
        if not demo:
            raise ConfigError(
                "RELIEF_PSEUDONYM_KEY is not set (nor the Airflow Variable relief_pseudonym_key or "
                "Connection relief_pseudonym). Set it to a secret of at least 16 characters "
                "(it keys the HMAC that pseudonymises patient ids), or pass --demo for synthetic data."
            )
        key = DEMO_PSEUDONYM_KEY
    if len(key) < 16:
        raise ConfigError("RELIEF_PSEUDONYM_KEY must be at least 16 characters long.")
    return Settings(
        warehouse_url=warehouse_url or env.get("RELIEF_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL,
        report_dir=Path(report_dir or env.get("RELIEF_REPORT_DIR") or "reports"),
        pseudonym_key=key,
        demo=demo,
        outcome=outcome or OutcomeDefinition(),
        models=models or ModelSettings(),
        refit=refit or refit_policy_from_env(env),
        full_derive=_flag(env, "RELIEF_FULL_DERIVE"),
    )


def refit_policy_from_env(env: dict[str, str]) -> RefitPolicy:
    """RELIEF_REFIT_SHARE, RELIEF_REFIT_MAX_DAYS and RELIEF_REFIT, defaults where unset."""
    default = RefitPolicy()
    return RefitPolicy(
        min_new_share=_number(env, "RELIEF_REFIT_SHARE", default.min_new_share),
        max_age_days=_number(env, "RELIEF_REFIT_MAX_DAYS", default.max_age_days),
        always=_flag(env, "RELIEF_REFIT"),
    )


def _number(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _flag(env: dict[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, got {value!r}")


def landing_dir(explicit: str | Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The landing folder: the explicit value, else RELIEF_LANDING_DIR."""
    env = dict(os.environ) if env is None else env
    value = explicit or env.get("RELIEF_LANDING_DIR")
    if not value:
        raise ConfigError(
            "no landing folder: pass one (--landing, DAG param 'landing') or set RELIEF_LANDING_DIR"
        )
    return Path(value)
