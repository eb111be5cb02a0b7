-- Minimal DDL compatible with web/simulations/models.py, for tests run before the Django
-- migrations exist. Every statement is IF NOT EXISTS: real migrations win when present.
CREATE TABLE IF NOT EXISTS auth_user (
    id       serial PRIMARY KEY,
    username varchar(150) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS nnt_experiment (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   integer NULL REFERENCES auth_user (id),
    name       varchar(200) NOT NULL DEFAULT '',
    config     jsonb NOT NULL DEFAULT '{}',
    model_json jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS nnt_simulation (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    experiment_id uuid NULL REFERENCES nnt_experiment (id),
    owner_id      integer NULL REFERENCES auth_user (id),
    owner_name    varchar(150) NOT NULL DEFAULT '',
    name          varchar(300) NOT NULL DEFAULT '',
    status        varchar(20) NOT NULL DEFAULT 'queued',
    epoch         integer NOT NULL DEFAULT 0,
    total_epochs  integer NOT NULL DEFAULT 0,
    message       text NOT NULL DEFAULT '',
    error         text NOT NULL DEFAULT '',
    config        jsonb NOT NULL DEFAULT '{}',
    tags          varchar(64)[] NOT NULL DEFAULT '{}',
    index         integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    status_at     timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz NULL,
    finished_at   timestamptz NULL,
    early_stop    jsonb NULL,
    test_metrics  jsonb NULL
);
-- A database whose table predates a column: add it (a no-op on a fresh or migrated one).
ALTER TABLE nnt_simulation ADD COLUMN IF NOT EXISTS test_metrics jsonb NULL;
