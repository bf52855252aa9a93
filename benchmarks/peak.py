"""Peak resident memory of the current process, for the benchmarks' "peak RSS" columns."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB, since it started its program.

    ``/proc/self/status`` VmHWM rather than ``ru_maxrss``: Linux keeps ``ru_maxrss``
    across ``exec``, so a benchmark child started by a large parent (one that had just
    generated a delivery, say) reported the parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
