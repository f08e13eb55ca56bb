-- Manual requeue gives a task a fresh retry budget: retries count from retry_base, the number of
-- attempts made before the latest requeue.
ALTER TABLE tasks ADD COLUMN retry_base integer NOT NULL DEFAULT 0;

-- Queues an operator paused. Workers read this at start and on reconnect, so a pause also reaches
-- workers that missed the broadcast command.
CREATE TABLE paused_queues (
    queue     text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);
