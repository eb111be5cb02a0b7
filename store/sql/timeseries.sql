-- Time-series tables written only by the stream processors (Faust agents).
-- Applied by store.schema.apply(): :partition_clause is "PARTITION BY RANGE (at)" for
-- native partitioning, or empty when TimescaleDB turns each table into a hypertable.
-- Every primary key makes replays harmless (INSERT ... ON CONFLICT DO NOTHING).

CREATE TABLE IF NOT EXISTS nnt_epoch_metric (
    simulation_id uuid             NOT NULL,
    epoch         integer          NOT NULL,
    metric        text             NOT NULL,
    value         double precision,
    at            timestamptz      NOT NULL,
    PRIMARY KEY (simulation_id, metric, epoch, at)
) {partition_clause};

CREATE TABLE IF NOT EXISTS nnt_batch_metric (
    simulation_id uuid             NOT NULL,
    epoch         integer          NOT NULL,
    step          integer          NOT NULL,
    metric        text             NOT NULL,
    value         double precision,
    value_min     double precision,
    value_max     double precision,
    reduced       boolean          NOT NULL DEFAULT false,
    at            timestamptz      NOT NULL,
    PRIMARY KEY (simulation_id, metric, epoch, step, at)
) {partition_clause};

CREATE TABLE IF NOT EXISTS nnt_tensor (
    simulation_id uuid        NOT NULL,
    layer_index   integer     NOT NULL,
    layer_name    text        NOT NULL,
    kind          text        NOT NULL,
    variable      text        NOT NULL DEFAULT '',
    epoch         integer     NOT NULL,
    chunk         integer     NOT NULL,
    chunks        integer     NOT NULL,
    dtype         text        NOT NULL,
    shape         integer[]   NOT NULL,
    compression   text        NOT NULL,
    data          bytea,
    stats         jsonb,
    reduced       boolean     NOT NULL DEFAULT false,
    at            timestamptz NOT NULL,
    PRIMARY KEY (simulation_id, layer_index, kind, variable, epoch, chunk, at)
) {partition_clause};

-- Added after the first schema: databases created before it gain the column here.
-- reduced = true: the full values were dropped (sink period or retention); stats stay.
ALTER TABLE nnt_tensor ADD COLUMN IF NOT EXISTS reduced boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS nnt_status_event (
    simulation_id uuid        NOT NULL,
    at            timestamptz NOT NULL,
    status        text        NOT NULL,
    epoch         integer     NOT NULL DEFAULT 0,
    message       text        NOT NULL DEFAULT '',
    command_id    uuid,
    PRIMARY KEY (simulation_id, at, status)
) {partition_clause};

CREATE TABLE IF NOT EXISTS nnt_resource (
    simulation_id      uuid             NOT NULL,
    at                 timestamptz      NOT NULL,
    cpu_percent        double precision NOT NULL,
    memory_bytes       bigint           NOT NULL,
    memory_limit_bytes bigint,
    gpu_percent        double precision,
    gpu_memory_bytes   bigint,
    PRIMARY KEY (simulation_id, at)
) {partition_clause};

-- Live tag aggregates: one row per (owner, tag, metric, epoch), kept current by the Faust
-- table. Scoped to the simulations' owner (username): users never share a tag group.
CREATE TABLE IF NOT EXISTS nnt_tag_aggregate (
    owner      text             NOT NULL DEFAULT '',
    tag        text             NOT NULL,
    metric     text             NOT NULL,
    epoch      integer          NOT NULL,
    count      bigint           NOT NULL,
    sum        double precision NOT NULL,
    sumsq      double precision NOT NULL,
    min        double precision,
    max        double precision,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, tag, metric, epoch)
);

-- Databases created before the owner column: their rows mixed users' runs and cannot be
-- split, so they are dropped (new epochs rebuild them); the key gains the owner.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'nnt_tag_aggregate'
                     AND column_name = 'owner') THEN
        DELETE FROM nnt_tag_aggregate;
        ALTER TABLE nnt_tag_aggregate ADD COLUMN owner text NOT NULL DEFAULT '';
        ALTER TABLE nnt_tag_aggregate DROP CONSTRAINT IF EXISTS nnt_tag_aggregate_pkey;
        ALTER TABLE nnt_tag_aggregate ADD PRIMARY KEY (owner, tag, metric, epoch);
    END IF;
END $$;

-- Per-run summaries for the runs table (store/summaries.py): kept by the stream workers in
-- the transaction of the rows they summarise, filled once from the stored rows by
-- store.schema. Plain tables, one row per run (and metric): sorting 10,000 runs by a
-- metric reads 10,000 of these rows by primary key, never nnt_epoch_metric.
CREATE TABLE IF NOT EXISTS nnt_run_metric (
    simulation_id uuid             NOT NULL,
    metric        text             NOT NULL,
    last          double precision,
    last_epoch    integer,
    last_at       timestamptz,
    best_min      double precision,
    min_epoch     integer,
    best_max      double precision,
    max_epoch     integer,
    nonfinite     boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (simulation_id, metric)
);

CREATE TABLE IF NOT EXISTS nnt_run_health (
    simulation_id    uuid    PRIMARY KEY,
    tensor_epoch     integer,
    flags            text[]  NOT NULL DEFAULT '{}',
    nonfinite_metric boolean NOT NULL DEFAULT false
);

-- Diagnoses (store/diagnoses.py), kept by the stream workers with the epochs that carry
-- them. diagnosed_epoch/_at: the latest epoch whose event carried diagnoses (NULL: never
-- diagnosed, e.g. an old SDK), which decides which diagnoses are active.
ALTER TABLE nnt_run_health ADD COLUMN IF NOT EXISTS diagnosed_epoch integer;
ALTER TABLE nnt_run_health ADD COLUMN IF NOT EXISTS diagnosed_at timestamptz;

-- One row per run and problem ever reported: the latest epoch's text and layers, the first
-- and last epoch seen, active while the run's latest diagnosed epoch carries it.
-- reported_at: when the row was created (GET /api/alerts), to the millisecond, as JSON
-- carries it (a client passes it back as `since`); at: when the row last changed.
CREATE TABLE IF NOT EXISTS nnt_run_diagnosis (
    simulation_id uuid        NOT NULL,
    problem       text        NOT NULL,
    severity      text        NOT NULL,
    title         text        NOT NULL,
    summary       text        NOT NULL DEFAULT '',
    fix           text        NOT NULL DEFAULT '',
    layers        text[]      NOT NULL DEFAULT '{}',
    first_epoch   integer     NOT NULL,
    last_epoch    integer     NOT NULL,
    last_at       timestamptz NOT NULL,
    evidence      jsonb       NOT NULL DEFAULT '{}',
    active        boolean     NOT NULL DEFAULT true,
    reported_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (simulation_id, problem)
);
CREATE INDEX IF NOT EXISTS nnt_run_diagnosis_reported ON nnt_run_diagnosis (reported_at);

-- Each logged epoch's evidence (schemas.diagnosis.Evidence, nulls left out): a few kB per
-- epoch, read one run at a time, so a plain table keyed like the other series.
CREATE TABLE IF NOT EXISTS nnt_epoch_evidence (
    simulation_id uuid        NOT NULL,
    epoch         integer     NOT NULL,
    evidence      jsonb       NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (simulation_id, epoch, at)
);

-- Tensor payloads are zstd-compressed by the trainer: storing them EXTERNAL (out of line,
-- never pglz'd) saves the futile second compression attempt on every write and read.
-- Applied to partitions by store.schema after they exist (TimescaleDB's chunks inherit
-- it). Only when not yet so: TimescaleDB refuses the ALTER once the columnstore is enabled.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'nnt_tensor'::regclass
               AND attname = 'data' AND attstorage <> 'e') THEN
        ALTER TABLE nnt_tensor ALTER COLUMN data SET STORAGE EXTERNAL;
    END IF;
END $$;
