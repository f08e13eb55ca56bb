-- Indexes for the monitor's per-minute charts, which read the tasks and attempts that finished in
-- the last minutes.

CREATE INDEX tasks_finished_at ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX task_attempts_finished_at ON task_attempts (finished_at) WHERE finished_at IS NOT NULL;
