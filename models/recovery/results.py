"""The ``durability`` section of a result: what was committed, what the backups and the archive
hold, every disaster's RPO and RTO, and whether the review's claims held.

The claims are the review's (section 7): RPO 1 h, RTO 4 h. Each disaster says whether its
own RPO and RTO kept them; the section's top-level figures are the worst disaster's, so a
scenario's expectations and the replication summaries (``--replications N``) read one number
per run: the replicated mean of ``rpo_within_claim`` is the probability that the claim held,
with its interval. Reading changes nothing: every figure is computed from what the run recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.recovery.wiring import Recovery

__all__ = ["RPO_CLAIM_S", "RTO_CLAIM_S", "durability_section"]

RPO_CLAIM_S = 3600.0
"""The review's claimed recovery point objective: 1 h."""
RTO_CLAIM_S = 4 * 3600.0
"""The review's claimed recovery time objective: 4 h."""


_NOT_A_SERVICE_LOSS = frozenset({"rebuild-replica", "already-down"})
"""Recovery paths whose figures the service-level RPO and RTO leave out."""


def durability_section(recovery: Recovery, now: float) -> dict[str, Any]:
    """The section, as of simulated time ``now`` (see the module docstring)."""
    commits = recovery.commits
    disasters = recovery.failover.summary()
    # The claims are the service's: a replica rebuilt behind a healthy primary loses nothing and
    # takes no service down, and a disaster on a node already down adds no figures of its own.
    happened = [d for d in disasters if d["happened"] and d["path"] not in _NOT_A_SERVICE_LOSS]
    rpos = [float(d["rpo_s"]) for d in happened if d["rpo_s"] is not None]
    rtos = [d["rto_s"] for d in happened]
    # every table is there from the start (None until a disaster), so expectations can name it
    lost: dict[str, int | None] = dict.fromkeys(commits.tables, 0 if happened else None)
    for disaster in happened:
        for table, rows in (disaster.get("rows_lost") or {}).items():
            lost[table] = (lost.get(table) or 0) + int(rows or 0)
    rpo = max(rpos) if rpos else None
    # a recovery that never finishes has no RTO, and no claim about it held
    rto = None if not happened or None in rtos else max(float(r) for r in rtos)
    return {
        "detail_from_s": commits.detail_from,
        "flows": {
            table: {
                "level": level,
                "level_before_detail": "aggregate",
                "rows_committed": commits.rows_between(table, 0.0, now),
            }
            for table, level in commits.levels().items()
        },
        "wal_bytes_written": commits.wal_bytes_between(0.0, now),
        "backups": recovery.plane.summary(now),
        "disasters": disasters,
        "disasters_by_name": recovery.failover.summary_by_name(),
        "claims": {"rpo_s": RPO_CLAIM_S, "rto_s": RTO_CLAIM_S},
        "disasters_happened": len(happened),  # those that took the service's data or service down
        "rpo_s": rpo,
        "rpo_h": None if rpo is None else rpo / 3600.0,
        "rto_s": rto,
        "rto_h": None if rto is None else rto / 3600.0,
        "everything_lost": None if not happened else int(any(not d["recovered"] for d in happened)),
        "rows_lost": lost,
        "rpo_within_claim": None if rpo is None else int(rpo <= RPO_CLAIM_S),
        "rto_within_claim": None if not happened else int(rto is not None and rto <= RTO_CLAIM_S),
    }
