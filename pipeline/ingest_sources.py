"""One ingest entry point for every source: a landing folder, an OMOP CDM database, a FHIR
bulk export or a REDCap export (``relief ingest --source``).

Each source's reader (``pipeline/sources/``) yields tables in the landing contract; from
there ``pipeline.ingest`` loads them the same way. A source that cannot even be hashed
(unreadable export, bad mapping) is recorded as a failed delivery, never raised.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.ingest import ingest, load_source
from pipeline.manifest import DeliveryOutcome, logged, now, record_failure, sha_text
from pipeline.sources.landing import DeliveryError
from pipeline.warehouse import Warehouse


def ingest_source(
    wh: Warehouse,
    source: str,
    location: str | Path,
    pseudonym_key: str,
    *,
    mapping: Path | None = None,
    cdm_schema: str | None = None,
) -> list[DeliveryOutcome]:
    """Ingest one input of any source: a landing folder, OMOP URL, FHIR folder or REDCap CSV."""
    if source == "landing":
        return ingest(wh, Path(location), pseudonym_key)
    if source == "omop":
        from sqlalchemy.engine import make_url

        from pipeline.sources.omop import read_omop

        shown = make_url(str(location)).render_as_string(hide_password=True)
        return [
            load_source(
                wh, "omop", shown, lambda: read_omop(str(location), cdm_schema), pseudonym_key
            )
        ]
    if source == "fhir":
        from pipeline.sources.fhir import fhir_sha256, read_fhir

        folder = Path(location)
        try:
            sha = fhir_sha256(folder)
        except DeliveryError as exc:
            return [
                logged(
                    record_failure(
                        wh,
                        "fhir",
                        str(folder),
                        f"fhir-f{sha_text(str(folder))[:14]}",
                        "",
                        exc,
                        now(),
                    )
                )
            ]
        return [load_source(wh, "fhir", str(folder), lambda: read_fhir(folder), pseudonym_key, sha)]
    if source == "redcap":
        from pipeline.sources.redcap import read_redcap, redcap_sha256

        if mapping is None:
            raise ValueError("REDCap ingest needs a mapping file")
        export = Path(location)
        try:
            sha = redcap_sha256(export, mapping)
        except DeliveryError as exc:
            return [
                logged(
                    record_failure(
                        wh,
                        "redcap",
                        str(export),
                        f"redcap-f{sha_text(str(export))[:12]}",
                        "",
                        exc,
                        now(),
                    )
                )
            ]
        return [
            load_source(
                wh, "redcap", str(export), lambda: read_redcap(export, mapping), pseudonym_key, sha
            )
        ]
    raise ValueError(f"unknown source {source!r}; expected landing, omop, fhir or redcap")
