-- Tasks, their attempts and the transactional outbox that feeds RabbitMQ.

CREATE TABLE tasks (
    id              uuid        PRIMARY KEY,           -- UUIDv7, so ids sort by creation time
    task            text        NOT NULL,
    args            jsonb       NOT NULL,
    state           text        NOT NULL,
    result          jsonb,
    error           text,
    traceback       text,
    attempts        integer     NOT NULL DEFAULT 0,    -- attempts started so far
    max_retries     integer     NOT NULL,
    timeout_ms      integer     NOT NULL,
    queue           text        NOT NULL,
    worker          text,                              -- worker of the latest attempt
    eta             timestamptz,                       -- earliest start of the next attempt
    idempotency_key text,
    request_hash    bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_state_valid
        CHECK (state IN ('PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'))
) WITH (fillfactor = 70);

-- A task row is updated twice per attempt (STARTED, then its outcome). No index covers the columns
-- those updates change, and fillfactor leaves room in each page, so PostgreSQL can make them HOT
-- updates that write no index entries. That is why there is no index on state: filtering by
-- state walks the primary key, newest first.
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_task_id ON tasks (task, id DESC);

-- task_id has no foreign key on purpose: the check would lock the task row (FOR KEY SHARE) on every
-- attempt written, in the same transaction that updates that row. Attempts are written only
-- next to their task, and tasks are never deleted by the application.
CREATE TABLE task_attempts (
    task_id     uuid        NOT NULL,
    attempt     integer     NOT NULL,
    worker      text        NOT NULL,
    state       text        NOT NULL,
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (task_id, attempt)
) WITH (fillfactor = 80);

-- Task announcements committed together with their tasks and not yet confirmed by RabbitMQ. One
-- row carries the messages of every task created by one statement, as a JSON array of
-- {"id", "task"} objects, so the outbox costs one row per batch rather than per task. A row with
-- a countdown holds one task, named in task_id, so that revoking the task can drop it. Rows live
-- for milliseconds unless RabbitMQ is down or a countdown holds them, so the table stays small and
-- needs no index beyond its key: the relay walks it in id order.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    queue      text        NOT NULL,
    payload    jsonb       NOT NULL,
    task_id    uuid,
    not_before timestamptz NOT NULL DEFAULT now()
);
