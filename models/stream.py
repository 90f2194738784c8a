"""The Kinesis-like stream: shards, write limits, batch reads, checkpoints.

Records enter through :meth:`Stream.put_records` (the IoT rule's PutRecords) with the
time each becomes readable; a shard accepts at most ``write_limit_per_shard`` records per
second and rejects the rest (``ProvisionedThroughputExceededException``), which the IoT
rule's error action drops.  Consumers read with :class:`~models.ops.GetRecords` -- up to
10,000 records after a sequence number -- and record progress with
:class:`~models.ops.Checkpoint` in a lease table that survives consumer crashes, so a
restarted consumer resumes from its last checkpoint and sees again everything after it
(at-least-once delivery).

Shards keep records in parallel lists with a moving base sequence number; everything up
to the checkpoint is trimmed, so memory follows the backlog, not the run length.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.config import StreamConfig
from models.names import KINESIS, READING_COPIES, READINGS, STREAM_ITERATOR_AGE, STREAM_MAX_ITERATOR_AGE
from models.ops import Checkpoint, GetRecords
from models.readings import IS_COPY, Reading
from sim.actor import Actor
from sim.ledger import FinalState
from sim.ops import Operation, Rejected

if TYPE_CHECKING:
    from sim.kernel import Kernel

__all__ = ["RecordBatch", "Stream"]


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """A GetRecords answer: records with sequence numbers ``first .. first+len-1``."""

    shard: int
    first: int
    records: list[Reading]
    arrivals: list[float]
    behind_s: float


class _Shard:
    __slots__ = ("base", "checkpoint", "records", "visible", "window_count", "window_second")

    def __init__(self) -> None:
        self.base = 1  # sequence number of records[0]
        self.visible: list[float] = []
        self.records: list[Reading] = []
        self.checkpoint = 0
        self.window_second = -1
        self.window_count = 0

    @property
    def next_sequence(self) -> int:
        return self.base + len(self.records)


class Stream(Actor):
    """See the module docstring."""

    def __init__(self, kernel: Kernel, config: StreamConfig, *, zone: str, region: str) -> None:
        super().__init__(kernel, KINESIS, zone=zone, region=region, concurrency=64, service_time=config.service_time)
        self.config = config
        self.shards = [_Shard() for _ in range(config.shards)]
        self.on_checkpoint: Callable[[int, int], None] | None = None
        self.throttled = 0
        self.accepted = 0
        self._age = kernel.metrics.histogram(STREAM_ITERATOR_AGE)
        self._age_series = kernel.metrics.timeseries(STREAM_MAX_ITERATOR_AGE)

    def shard_of(self, device_id: int) -> int:
        """Partition key -> shard (the device id is the partition key)."""
        return device_id % len(self.shards)

    def put_records(self, shard_index: int, records: Sequence[Reading], visible: Sequence[float]) -> int:
        """Append records (sorted by ``visible``) to one shard; returns how many were throttled.

        The per-shard limit is counted per whole second of arrival time.  When the batch
        cannot reach the limit (the usual case) it is appended whole; otherwise records
        are admitted one by one.
        """
        n = len(records)
        if not n:
            return 0
        shard = self.shards[shard_index]
        limit = self.config.write_limit_per_shard
        first_second = int(visible[0])
        carried = shard.window_count if first_second == shard.window_second else 0
        if n + carried > limit:
            return self._put_throttled(shard, records, visible)
        # Nothing is throttled: append in bulk, then leave the window as the loop would.
        last_second = int(visible[-1])
        in_last = n - bisect_left(visible, float(last_second))  # records of the batch's last second
        shard.window_count = in_last + (carried if last_second == first_second else 0)
        shard.window_second = last_second
        times = visible if isinstance(visible, list) else list(visible)
        if shard.visible:
            last = shard.visible[-1]
            behind = bisect_left(times, last)  # readable no earlier than their predecessor
            if behind:
                times = [last] * behind + times[behind:]
        shard.visible.extend(times)
        shard.records.extend(records)
        self.accepted += n
        return 0

    def _put_throttled(self, shard: _Shard, records: Sequence[Reading], visible: Sequence[float]) -> int:
        """:meth:`put_records` one record at a time, for batches that may meet the limit."""
        limit = self.config.write_limit_per_shard
        last = shard.visible[-1] if shard.visible else 0.0
        throttled = 0
        throttled_copies = 0
        for record, at in zip(records, visible, strict=True):
            second = int(at)
            if second != shard.window_second:
                shard.window_second = second
                shard.window_count = 0
            if shard.window_count >= limit:
                throttled += 1
                throttled_copies += record[IS_COPY]
                continue
            shard.window_count += 1
            if at < last:
                at = last  # a shard is ordered: a record is readable no earlier than its predecessor
            last = at
            shard.visible.append(at)
            shard.records.append(record)
        ledger = self.kernel.ledger
        ledger.settle_count(READINGS, FinalState.DROPPED, "stream_throttled", throttled - throttled_copies)
        ledger.settle_count(READING_COPIES, FinalState.DROPPED, "stream_throttled", throttled_copies)
        self.throttled += throttled
        self.accepted += len(records) - throttled
        return throttled

    def handle(self, op: Operation, origin: str) -> Any:
        match op:
            case GetRecords():
                return self._get(op)
            case Checkpoint():
                return self._checkpoint(op)
        raise Rejected("unsupported", f"kinesis does not handle {op.name}")

    def _get(self, op: GetRecords) -> RecordBatch:
        shard = self.shards[op.shard]
        now = self.kernel.now
        start = max(0, op.after + 1 - shard.base)
        readable = bisect_right(shard.visible, now, lo=start)
        end = min(readable, start + op.limit)
        records = shard.records[start:end]
        arrivals = shard.visible[start:end]
        behind = now - arrivals[-1] if arrivals else 0.0
        if arrivals:
            self._age.add(behind)
            self._age_series.add(now, behind)
        return RecordBatch(op.shard, shard.base + start, records, arrivals, behind)

    def _checkpoint(self, op: Checkpoint) -> int:
        shard = self.shards[op.shard]
        if op.sequence > shard.checkpoint:
            shard.checkpoint = op.sequence
            if self.on_checkpoint is not None:
                self.on_checkpoint(op.shard, op.sequence)
            drop = shard.checkpoint + 1 - shard.base
            if drop > 0:
                del shard.records[:drop]
                del shard.visible[:drop]
                shard.base += drop
        return shard.checkpoint

    def backlog(self) -> int:
        """Records written but not yet checkpointed, over all shards."""
        return sum(len(s.records) for s in self.shards)

    def unsettled(self, settled_upto: Sequence[int]) -> dict[str, int]:
        """Originals and copies after each shard's settled sequence (the ledger's in-flight share)."""
        counts = {READINGS: 0, READING_COPIES: 0}
        for shard, upto in zip(self.shards, settled_upto, strict=True):
            start = max(0, upto + 1 - shard.base)
            for record in shard.records[start:]:
                counts[READING_COPIES if record[IS_COPY] else READINGS] += 1
        return counts

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures.update(
            {
                "records_accepted": self.accepted,
                "records_throttled": self.throttled,
                "backlog_at_end": self.backlog(),
            }
        )
        return figures
