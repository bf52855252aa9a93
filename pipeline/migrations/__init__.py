"""Alembic migrations for the warehouse: ``env.py``, ``versions/`` and their shared helpers.

Run them through ``pipeline.migrate`` (``relief db upgrade``); no alembic.ini is needed.
"""
