-- TimescaleDB only (applied by store.schema after the hypertables exist). Idempotent.
--
-- Full tensor values are the bulk of the database, and their statistics and histograms
-- (the charts) are a tiny part of the same rows, so a chunk-dropping retention policy
-- would take the charts with them. These jobs drop values and keep the statistics in the
-- same form the sink and the native thinning leave (store/maintenance.py):
-- chunk 0 keeps stats and shape with data NULL, chunks 0 and reduced true; chunks 1.. go.
-- They work a whole TimescaleDB chunk at a time, once: chunks entirely older than the
-- cutoff that still hold values to drop. Their `chunks` and `epoch` columns are all that
-- is read to find them (a columnstore chunk decompresses those columns only); the
-- columnstore policy recompresses what the rewrite left uncompressed.
--
-- keep_every > 0 keeps the values of epochs that are multiples of it (the thinning job);
-- 0 keeps none (the payload retention job).
CREATE OR REPLACE PROCEDURE nnt_drop_tensor_values(cutoff timestamptz, keep_every integer)
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    holds_values boolean;
BEGIN
    FOR part IN
        SELECT range_start, range_end FROM timescaledb_information.chunks
        WHERE hypertable_schema = current_schema() AND hypertable_name = 'nnt_tensor'
          AND range_end <= cutoff
        ORDER BY range_start
    LOOP
        SELECT EXISTS (SELECT 1 FROM nnt_tensor
                       WHERE at >= part.range_start AND at < part.range_end AND chunks > 0
                         AND (keep_every < 1 OR epoch % greatest(keep_every, 1) <> 0))
          INTO holds_values;
        CONTINUE WHEN NOT holds_values;
        DELETE FROM nnt_tensor
        WHERE at >= part.range_start AND at < part.range_end AND chunk > 0
          AND (keep_every < 1 OR epoch % greatest(keep_every, 1) <> 0);
        UPDATE nnt_tensor SET data = NULL, chunks = 0, reduced = true
        WHERE at >= part.range_start AND at < part.range_end AND chunks > 0
          AND (keep_every < 1 OR epoch % greatest(keep_every, 1) <> 0);
        COMMIT;  -- one chunk per transaction: locks and the rewrite stay bounded
    END LOOP;
END
$$;

-- Retention of full values: config.drop_after (NNT_TENSOR_PAYLOAD_RETENTION_DAYS).
CREATE OR REPLACE PROCEDURE nnt_drop_tensor_payloads(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    CALL nnt_drop_tensor_values(now() - (config ->> 'drop_after')::interval, 0);
END
$$;

-- Thinning: values older than config.thin_after go unless their epoch is a multiple of
-- config.keep_every (NNT_TENSOR_THIN_AGE_S, NNT_TENSOR_KEEP_EVERY).
CREATE OR REPLACE PROCEDURE nnt_thin_tensors(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    CALL nnt_drop_tensor_values(now() - (config ->> 'thin_after')::interval,
                                (config ->> 'keep_every')::integer);
END
$$;

-- A deleted simulation's raw rows go in the stream workers' purge
-- (store/deletion.py), and the refresh policy then removes its coarse batch
-- points wherever raw rows are still kept; older coarse points have no raw rows left to
-- refresh from, so this job deletes them: those of every simulation whose deleted status
-- is younger than config.deleted_within (the longest a deleted status can take to reach
-- the workers, plus one run of this job). Without the web's tables nothing is deleted.
CREATE OR REPLACE PROCEDURE nnt_purge_deleted_batch_buckets(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    gone uuid[];
BEGIN
    IF to_regclass('nnt_simulation') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT array_agg(id) FROM nnt_simulation '
            'WHERE status = ''deleted'' AND status_at >= now() - $1::interval'
       INTO gone USING config ->> 'deleted_within';
    IF gone IS NOT NULL THEN
        -- the aggregate is materialized only, a plain view: deletes reach its rows
        DELETE FROM nnt_batch_bucket WHERE simulation_id = ANY (gone);
    END IF;
END
$$;
