-- An index for the monitor's per-minute charts, which read the attempts that finished in the
-- last minutes. Most attempts are inserted already finished, so it costs an index entry per
-- attempt and no more. tasks.finished_at has no index on purpose: every outcome changes it, and
-- an index on it would stop those updates from being HOT.

CREATE INDEX task_attempts_finished_at ON task_attempts (finished_at) WHERE finished_at IS NOT NULL;
