"""The ingest consumer: a KCL-style worker that runs the record processor per shard.

For every shard a long-lived loop reads a batch after its position (``GetRecords``) and
hands it to the sans-IO record processor (:func:`models.logic.ingest.process_records`); it
checkpoints at most every ``checkpoint_every`` seconds, as the AWS sample KCL consumer
does (60 s), so a crash replays up to that much already-stored data.  A batch whose
database write fails is not checkpointed and is read again; a record the processor cannot
decode (a poison message, as designed) crashes the whole consumer, which restarts
``restart_after`` later from the last checkpoints -- every shard stalls, the review's
finding S2.

Ledger bookkeeping is the twin's, not the system's: the processor reports each record's
fate, and the fates become final when the stream commits a checkpoint covering them.
Records after the last checkpoint are still in flight, wherever they are.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Generator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import simpy

from models.config import IngestConfig
from models.logic.ingest import IngestSettings, PoisonRecord, process_records
from models.names import INGEST, KINESIS, READING_COPIES, READINGS
from models.ops import Checkpoint, GetRecords
from models.policies.dead_letter import DeadLetterPolicy
from models.policies.dedup import DedupWindow
from models.readings import IS_COPY, Reading
from models.settings import settings_from
from sim.actor import Actor
from sim.ledger import FinalState
from sim.ops import OpError

if TYPE_CHECKING:
    from models.stream import Stream
    from sim.kernel import Kernel

__all__ = ["IngestConsumer"]


class IngestConsumer(Actor):
    """See the module docstring."""

    def __init__(
        self,
        kernel: Kernel,
        config: IngestConfig,
        stream: Stream,
        *,
        unique_index: bool,
        zone: str,
        region: str,
    ) -> None:
        super().__init__(kernel, INGEST, zone=zone, region=region, concurrency=1)
        self.config = config
        self.stream = stream
        self.settings = settings_from(IngestSettings, config, on_conflict_do_nothing=unique_index)
        self.dedup = DedupWindow(config.dedup_window) if config.dedup else None
        self.dead_letters = (
            DeadLetterPolicy(config.max_attempts, not_retryable=(PoisonRecord,)) if config.dead_letter else None
        )
        shards = len(stream.shards)
        self.settled_upto = [0] * shards
        self.processed_upto = [0] * shards  # twin bookkeeping, survives crashes: spots redelivery
        self._pending: list[list[tuple[int, list[Reading], list[tuple[str, str]]]]] = [[] for _ in range(shards)]
        self.batches = 0
        self.poison_crashes = 0
        self.failed_batches = 0
        self.redis_failures = 0
        self.redeliveries = 0
        self.fetched = [0] * shards  # records read from each shard and not yet written: the write queue
        self.write_queue_peak = 0
        self.slo_hook: Callable[[list[Reading], int, float], None] | None = None  # first-time writes: SLO counting
        stream.on_checkpoint = self._committed
        for shard in range(shards):
            self.background(functools.partial(self._consume, shard))

    def on_crash(self) -> None:
        # process memory: the write queue, the dedup window and the failure counts start empty after a restart
        self.fetched = [0] * len(self.fetched)
        if self.dedup is not None:
            self.dedup.clear()
        if self.dead_letters is not None:
            self.dead_letters = DeadLetterPolicy(self.config.max_attempts, not_retryable=(PoisonRecord,))

    def _consume(self, shard: int, epoch: int) -> Generator[simpy.Event, Any, None]:
        env = self.kernel.env
        driver = self.kernel.driver
        poll = self.config.poll_interval
        after = self.stream.shards[shard].checkpoint  # the lease table survives the crash
        every = self.config.checkpoint_every
        timeout = self.config.stream_timeout
        checkpointed_at = env.now
        room = self.stream.config.max_records_per_get
        limit = self.config.write_queue_limit
        if limit is not None:
            # Backpressure: each shard's batch is written before its next read, so the write queue
            # holds at most one batch per shard; capping each at its share keeps the whole under limit.
            room = max(1, min(room, limit // len(self.fetched)))
        while self.epoch == epoch:
            try:
                batch = yield from driver.call(
                    self.name, GetRecords(KINESIS, shard, after, limit=room, timeout=timeout)
                )
            except OpError:
                yield env.timeout(poll)
                continue
            if self.epoch != epoch:
                return
            self.fetched[shard] = len(batch.records)
            self.write_queue_peak = max(self.write_queue_peak, sum(self.fetched))
            if batch.records:
                last = batch.first + len(batch.records) - 1
                seen = self.processed_upto[shard]
                if batch.first <= seen:  # processed before a crash, never checkpointed: at-least-once
                    self.redeliveries += min(last, seen) - batch.first + 1
                try:
                    outcome = yield from driver.drive(
                        process_records(self.settings, batch.records, self.dedup, self.dead_letters), self, epoch
                    )
                except PoisonRecord:
                    self.poison_crashes += 1
                    self.crash(self.config.restart_after)
                    return
                except OpError:
                    self.failed_batches += 1
                    self.fetched[shard] = 0  # dropped from memory: read again from the stream
                    yield env.timeout(poll)
                    continue  # not checkpointed: the same records are read again
                self.fetched[shard] = 0
                self.batches += 1
                self.redis_failures += outcome.redis_failures
                self._pending[shard].append((batch.first, batch.records, outcome.fates))
                if self.slo_hook is not None:
                    self.slo_hook(batch.records, max(0, seen + 1 - batch.first), env.now)
                self.processed_upto[shard] = max(seen, last)
                after = last
                if env.now - checkpointed_at >= every:
                    try:
                        yield from driver.call(self.name, Checkpoint(KINESIS, shard, last, timeout=timeout))
                        checkpointed_at = env.now
                    except OpError:
                        pass  # a later checkpoint covers this batch
                    if self.epoch != epoch:
                        return
            yield env.timeout(poll)

    def _committed(self, shard: int, sequence: int) -> None:
        """The stream stored a checkpoint: fates of records up to ``sequence`` are final."""
        ledger = self.kernel.ledger
        upto = self.settled_upto[shard]
        keep = []
        for first, records, fates in self._pending[shard]:
            last = first + len(records) - 1
            if first > sequence:
                keep.append((first, records, fates))
                continue
            start = max(0, upto + 1 - first)
            stop = min(len(records), sequence + 1 - first)
            if start < stop:
                for (copy, (state, reason)), n in sorted(_tally(records, fates, start, stop).items()):
                    ledger.settle_count(READING_COPIES if copy else READINGS, FinalState(state), reason, n)
                upto = max(upto, first + stop - 1)
            if last > sequence:
                keep.append((first, records, fates))
        self._pending[shard] = keep
        self.settled_upto[shard] = max(upto, sequence)

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = dict(super().stats())
        figures.update(
            {
                "batches": self.batches,
                "poison_crashes": self.poison_crashes,
                "failed_batches": self.failed_batches,
                "redis_sync_failures": self.redis_failures,
                "records_redelivered": self.redeliveries,
                "write_queue_peak": self.write_queue_peak,
            }
        )
        return figures


def _tally(
    records: list[Reading], fates: list[tuple[str, str]], start: int, stop: int
) -> dict[tuple[Any, tuple[str, str]], int]:
    """How many of ``records[start:stop]`` have each (copy flag, fate) pair.

    A whole batch that met one fate (the usual case) is counted without touching each
    record's pair; anything else is tallied record by record.
    """
    if start == 0 and stop == len(records) and stop and fates.count(fates[0]) == stop:
        copies = sum(map(_copy_flag, records))
        tally = {(0, fates[0]): stop - copies} if copies < stop else {}
        if copies:
            tally[(1, fates[0])] = copies
        return tally
    return Counter(zip((r[IS_COPY] for r in records[start:stop]), fates[start:stop], strict=True))


_copy_flag = itemgetter(IS_COPY)
