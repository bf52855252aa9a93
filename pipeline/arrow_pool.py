"""Arrow's memory pool for bulk work: jemalloc rather than this pyarrow build's mimalloc.

Ingest streams millions of rows through short-lived Arrow buffers (a chunk is read,
pseudonymised, encoded and checked, then dropped). The default pool of the pyarrow
wheels in the lock file, mimalloc, returns freed pages to the kernel almost at once, so
each chunk's arrays are page-faulted in again: the row checks of 10 M rows spent a
third of their time in the kernel. With jemalloc, which keeps freed pages for reuse,
they took 4.7 s instead of 7.5 s (docs/performance.md, session 5).
"""

from __future__ import annotations

import logging
import os

import pyarrow as pa

log = logging.getLogger(__name__)


def use_jemalloc() -> None:
    """Make jemalloc Arrow's default pool, unless ``ARROW_DEFAULT_MEMORY_POOL`` chose one.

    Only later allocations use it; a pyarrow built without jemalloc keeps its default.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - depends on the pyarrow build
        log.debug("pyarrow has no jemalloc; keeping %s", pa.default_memory_pool().backend_name)
        return
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
