"""``relief ingest``: load one source into staging without running the later stages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.config import ConfigError, from_env

SOURCES = ("landing", "omop", "fhir", "redcap")
EXAMPLES = """examples:
  relief ingest --source landing --path landing/ --demo
  relief ingest --source omop --path postgresql://reader@cdm-host/cdm --cdm-schema cdm54
  relief ingest --source fhir --path export/2025-01-15/
  relief ingest --source redcap --path export.csv --mapping redcap_mapping.toml
"""


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    parser = sub.add_parser(
        "ingest",
        help="load one source (landing, OMOP, FHIR, REDCap) into staging",
        description="Read a source into the landing contract, pseudonymise patient ids, record "
        "the delivery in the manifest and bulk-load it into staging. The same input twice "
        "loads nothing new. Prints one line per delivery; exit code 2 if any failed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", choices=SOURCES, required=True, help="kind of input")
    parser.add_argument(
        "--path",
        required=True,
        help="landing folder, OMOP SQLAlchemy URL, FHIR export folder, or REDCap CSV export",
    )
    parser.add_argument("--mapping", type=Path, help="REDCap: the TOML mapping file")
    parser.add_argument("--cdm-schema", help="OMOP: schema holding the CDM tables")
    parser.add_argument("--warehouse", help="SQLAlchemy URL (default $RELIEF_WAREHOUSE_URL)")
    parser.add_argument("--demo", action="store_true", help="allow the public demo key")
    return {"ingest": cmd_ingest}


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest_sources import ingest_source
    from pipeline.warehouse import Warehouse

    if args.source == "redcap" and args.mapping is None:
        raise ConfigError("--source redcap needs --mapping (the TOML field mapping)")
    settings = from_env(warehouse_url=args.warehouse, demo=args.demo)
    wh = Warehouse(settings.warehouse_url)
    wh.create_schema()
    outcomes = ingest_source(
        wh,
        args.source,
        args.path,
        settings.pseudonym_key,
        mapping=args.mapping,
        cdm_schema=args.cdm_schema,
    )
    for o in outcomes:
        print(f"{o.delivery_id}  {o.status:8}  {o.rows:>10} rows  {o.path}")
        if o.error:
            print(f"relief ingest: error: {o.error}", file=sys.stderr)
    return 2 if any(o.status == "failed" for o in outcomes) else 0
