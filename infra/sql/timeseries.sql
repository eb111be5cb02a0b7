-- Time-series tables written only by the stream processors (Faust agents).
-- Applied by infra.timeseries.apply(): :partition_clause is "PARTITION BY RANGE (at)" for
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

-- Live tag aggregates: one row per (tag, metric, epoch), kept current by the Faust table.
CREATE TABLE IF NOT EXISTS nnt_tag_aggregate (
    tag        text             NOT NULL,
    metric     text             NOT NULL,
    epoch      integer          NOT NULL,
    count      bigint           NOT NULL,
    sum        double precision NOT NULL,
    sumsq      double precision NOT NULL,
    min        double precision,
    max        double precision,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tag, metric, epoch)
);

-- Tensor payloads are zstd-compressed by the trainer: storing them EXTERNAL (out of line,
-- never pglz'd) saves the futile second compression attempt on every write and read.
-- Applied to partitions and chunks by infra.timeseries after they exist.
ALTER TABLE nnt_tensor ALTER COLUMN data SET STORAGE EXTERNAL;
