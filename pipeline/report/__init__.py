"""The run report: one self-contained HTML file (plots inline, no external requests)."""

from pipeline.report.render import write_report

__all__ = ["write_report"]
