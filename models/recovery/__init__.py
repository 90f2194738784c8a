"""Durability and disaster recovery (review finding C4): what the backups, the WAL archive,
the replicas and the runbook really give back after a disaster, measured rather than claimed.

The arithmetic of archiving, base backups and restore is pure (:mod:`models.logic.durability`);
this package drives it through a run and meters it:

* :mod:`models.recovery.config` -- the ``durability:`` section of a scenario;
* :mod:`models.recovery.faults` -- the fault kinds only this part of the model can inflict
  (archive failures, silent segment loss or corruption, failed backup jobs, disk loss, region
  outage);
* :mod:`models.recovery.commits` -- the record of what was committed, per table, in aggregate
  on long horizons and row by row where the detailed twin runs: the ground truth every RPO
  is measured against;
* :mod:`models.recovery.backups` -- the backup plane: over months of simulated time, WAL cut
  into segments (:mod:`~models.recovery.wal_segmenter`) and archived
  (:mod:`~models.recovery.wal_archiver`), scheduled base backups and their retention
  (:mod:`~models.recovery.base_backups`), and the checks, restore tests and drills that may
  catch a broken archive (:mod:`~models.recovery.checks`);
* :mod:`models.recovery.runbook` and :mod:`models.recovery.failover` -- a disaster's recovery
  as timed runbook steps, so that RTO decomposes into its parts;
* :mod:`models.recovery.results` -- the ``durability`` section of a result.
"""
