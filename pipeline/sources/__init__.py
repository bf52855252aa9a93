"""Readers that turn what a clinic delivers into the canonical landing tables.

Each source returns raw string frames in the landing contract of design.md; ingest
pseudonymises, records the manifest and bulk-loads them into staging.
"""
