"""Every table of NN Tracker and every SQL statement that reads or writes one.

- Table definitions: `sql/timeseries.sql`, `sql/timescale.sql` (applied by `schema`), the
  time-series tables' columns for COPY (`tables`), the run records (`runs`), blobs (`blobs`).
- The stream workers' writes: `sink` (one transaction per batch, COPY with a replay-safe
  fallback), `projection` (the simulation row), `deletion`, `summaries`, `diagnoses`,
  `tags`, `maintenance` (native downsampling and retention).
- The web's reads: `metrics`, `batches`, `tensors`, `resources`, `runs_table`, `exports`,
  `diagnoses`; each takes a DB-API cursor (Django's or psycopg's) and returns typed rows.
- The orchestrators' shared record: `runs` (run records, command claims, host leases),
  `datasets`, `blobs`, `database`. Several orchestrators on different hosts coordinate
  through these tables and Kafka, never through a shared filesystem.
- Operations: `dbstatus` (what `nntracker db status` reports).

Django keeps the models it needs for accounts, forms and the admin (web/*/models.py); no
other package spells a statement (tests/unit/test_sql_in_store.py).
"""
