"""Redis Cluster: hash slots over masters, each master backed by a replica.

Keys map to masters by a stable hash (the cluster's 16,384 slots collapse to the masters
that own them).  When a master fails (fault target ``redis-master-N``) its slots are uncovered
until the replica is promoted ``failover_time`` later -- node timeout plus election, about
17 s with Redis defaults.  With ``cluster-require-full-coverage yes`` (the default) the
whole cluster answers ``CLUSTERDOWN`` meanwhile; without it, only the failed master's keys.
A pipeline touching a failed master fails as a whole, as a client pipeline does on the first error.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from models.config import RedisConfig
from models.names import REDIS, redis_master
from models.ops import RedisPipeline
from sim.actor import Actor
from sim.ops import Operation, Rejected

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["RedisCluster", "RedisMaster"]


class RedisMaster:
    """One master's availability; a fault target for ``crash``."""

    def __init__(self, cluster: RedisCluster, index: int) -> None:
        self.cluster = cluster
        self.name = redis_master(index + 1)
        self.available_from = 0.0
        self.failovers = 0

    def crash(self, restart_after: float) -> None:
        """The master dies; its replica is promoted after the failover time and serves its slots.

        ``restart_after`` (when the dead node rejoins, as a replica) does not matter to clients.
        """
        self.failovers += 1
        self.available_from = self.cluster.kernel.now + self.cluster.config.failover_time


class RedisCluster(Actor):
    """See the module docstring."""

    def __init__(self, kernel: Kernel, config: RedisConfig, *, zone: str, region: str) -> None:
        super().__init__(
            kernel, REDIS, zone=zone, region=region, concurrency=config.concurrency, service_time=config.service_time
        )
        self.config = config
        self.masters = [RedisMaster(self, i) for i in range(config.masters)]
        self.data: dict[str, Any] = {}
        self.cluster_down = 0

    def master_of(self, key: str) -> RedisMaster:
        """The master owning ``key``'s slot."""
        return self.masters[zlib.crc32(key.encode()) % len(self.masters)]

    def handle(self, op: Operation, origin: str) -> Any:
        if not isinstance(op, RedisPipeline):
            raise Rejected("unsupported", f"redis does not handle {op.name}")
        now = self.kernel.now
        if any(m.available_from > now for m in self.masters):  # only a failover makes slots matter
            if self.config.require_full_coverage:
                self.cluster_down += 1
                raise Rejected("CLUSTERDOWN", "a hash slot has no master (cluster-require-full-coverage yes)")
            for _, key, _ in op.commands:
                if self.master_of(key).available_from > now:
                    self.cluster_down += 1
                    raise Rejected("CLUSTERDOWN", f"slot of {key} has no master")
        data = self.data
        replies: list[Any] = []
        for command, key, value in op.commands:
            if command == "HSET":
                current = data.get(key)
                if isinstance(value, dict) and isinstance(current, dict):
                    current.update(value)
                else:
                    data[key] = dict(value) if isinstance(value, dict) else value
                replies.append(1)
            elif command == "GET":
                replies.append(data.get(key))
            else:
                raise Rejected("unknown_command", command)
        return replies

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures.update(
            {
                "keys": len(self.data),
                "failovers": sum(m.failovers for m in self.masters),
                "clusterdown_errors": self.cluster_down,
            }
        )
        return figures
