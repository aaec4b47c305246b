"""How large a batch each command takes: refuse up front the work that would not fit.

A trace holds every example's nodes, so memory and time grow at least linearly with m,
and some commands do more per example than others. :data:`M_LIMITS` is the one table of
limits; its numbers come from measurements on a 2-core machine with 23 GB (peak resident
memory with ``/usr/bin/time -v``, Python 3.11, the whole command, imports included):

    derive --format json   m = 1024: 106 MB, 7 s     m = 4096: 251 MB, 25 s   m = 8192: 683 MB, 54 s
                           m = 16384: 2.46 GB, 288 s (the code before issue 17 grew faster than m there)
    derive, after issue 17 (busy machine, load 4-8; benchmarks/results/speed.md)
                           m = 4096: 171 MB     m = 16384: 473 MB     m = 65536: 1.65 GB, 327 s
    render (3 examples)    m = 4096: 242 MB, 9 s (forward), 24 s (backward)
    verify                 m = 256: 105 MB, 22 s     m = 1024: 142 MB, 114 s
    render --full          m = 64: 4 s   m = 128: 15 s   m = 256: 74 s (staged, backward)

>>> check_m("derive", 65536)
65536
>>> check_m("verify", 10**8)
Traceback (most recent call last):
bngraph.errors.BngraphError: m = 100000000 is over verify's limit of m = 1024: it would need at least 2.4 TB of memory (about 24 KB per example) and its finite differences grow as m²
"""
from __future__ import annotations

from bngraph.errors import BngraphError

# The largest m each command accepts, and why.
M_LIMITS = {
    # derive: the trace, the adjoints and their printing, all linear in m; m = 65536 (named view,
    # JSON) takes 1.65 GB and about 5 minutes on a busy 2-core machine (table above), so the limit is that size.
    "derive": 65536,
    # render: draws examples 1, 2 and m only (COLLAPSE_ABOVE), but the backward diagram needs the
    # whole derivation: the same limit as derive.
    "render": 65536,
    # verify: finite differences run the layer once per input, so its work grows as m²
    # (m = 1024 took two minutes above); past that size it would not finish in reasonable time.
    "verify": 1024,
    # report: verify of both views plus four diagrams: verify's limit.
    "report": 1024,
}
# render --full lays out every example; Graphviz's dot layout grows faster than m², so past
# this size it takes minutes (see the table above); without --full any m up to render's limit draws.
FULL_MAX_M = 128
# Memory per example, measured at m = 65536 (derive, JSON): (1650 MB - 75 MB) / 65536 ≈ 24 KB.
BYTES_PER_EXAMPLE = 24_000
BASE_BYTES = 75_000_000  # Python, SymPy, NumPy and networkx loaded


def memory_estimate(m: int) -> int:
    """Bytes a command needs at batch size m, at least: memory grows at least linearly in m.

    >>> memory_estimate(65536) // 10**6
    1647
    """
    return BASE_BYTES + BYTES_PER_EXAMPLE * m


def human_bytes(count: int) -> str:
    """``count`` bytes as a person reads it.

    >>> human_bytes(1_500_000), human_bytes(7_500_000_000_000), human_bytes(10**30)
    ('1.5 MB', '7.5 TB', '1e+12 EB')
    """
    for unit, size in (("EB", 10**18), ("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


def check_m(command: str, m: int) -> int:
    """``m`` if ``command`` can do the work at that batch size; a one-line error naming the limit if not."""
    limit = M_LIMITS[command]
    if m <= limit:
        return m
    why = " and its finite differences grow as m²" if M_LIMITS[command] < M_LIMITS["derive"] else ""
    raise BngraphError(
        f"m = {m} is over {command}'s limit of m = {limit}: it would need at least "
        f"{human_bytes(memory_estimate(m))} of memory (about {BYTES_PER_EXAMPLE // 1000} KB per example){why}")


def check_full(m: int) -> None:
    """``render --full`` draws every example: refuse a layout that would take minutes.

    >>> check_full(256)
    Traceback (most recent call last):
    bngraph.errors.BngraphError: --full draws every example only up to m = 128 (m = 256 would take Graphviz minutes to lay out); without --full, examples 1, 2 and m are drawn
    """
    if m > FULL_MAX_M:
        raise BngraphError(f"--full draws every example only up to m = {FULL_MAX_M} (m = {m} would take Graphviz "
                           "minutes to lay out); without --full, examples 1, 2 and m are drawn")
