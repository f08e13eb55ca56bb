-- Workflows: chains, groups and chords compiled into tasks that wait for other tasks.
--
-- A task of a workflow starts when every task it waits for has succeeded. The tasks are created
-- together when the workflow is submitted. One that waits gets no outbox message until a trigger
-- releases it, in the transaction that stores the last result it waited for. When a task it
-- waits for fails or is revoked, the same trigger revokes it and everything downstream, so every
-- workflow ends. An operator's retry of the failed task brings those tasks back (Store.Requeue).
-- The trigger runs when a task changes state, and a task reaches SUCCESS at most once, so a
-- result releases its dependents exactly once, whichever worker wrote it.

CREATE TABLE workflows (
    id              uuid        PRIMARY KEY,
    spec            jsonb       NOT NULL,        -- the request's workflow, as accepted
    outputs         uuid[]      NOT NULL,        -- tasks whose results form the workflow's result
    many            boolean     NOT NULL,        -- the result is an array, not one task's result
    idempotency_key text,
    request_hash    bytea,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workflows_idempotency_key ON workflows (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- None of these columns is indexed except workflow_id, which never changes, so updates of task
-- rows stay HOT.
ALTER TABLE tasks
    ADD COLUMN workflow_id      uuid,
    ADD COLUMN waiting          integer NOT NULL DEFAULT 0,      -- tasks it waits for that have not succeeded
    ADD COLUMN pipe             text,                            -- argument that receives their results
    ADD COLUMN pipe_many        boolean NOT NULL DEFAULT false,  -- pipe an array of results, in order
    ADD COLUMN release_delay_ms bigint  NOT NULL DEFAULT 0,      -- countdown from its release
    ADD COLUMN revoked_by       uuid;                            -- the task whose end revoked it
CREATE INDEX tasks_workflow_id ON tasks (workflow_id) WHERE workflow_id IS NOT NULL;

-- child waits for parent. position orders the results piped into child.
CREATE TABLE task_edges (
    parent   uuid    NOT NULL,
    child    uuid    NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (parent, child)
);
CREATE INDEX task_edges_child ON task_edges (child);

-- taskflow_downstream returns every task that waits, directly or not, for one of roots. It walks
-- the graph a level at a time through the primary key of task_edges, so its cost follows the size
-- of the workflow, not of the table.
CREATE FUNCTION taskflow_downstream(roots uuid[]) RETURNS uuid[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found    uuid[] := '{}';
    frontier uuid[] := roots;
BEGIN
    LOOP
        SELECT coalesce(array_agg(DISTINCT child), '{}') INTO frontier
        FROM task_edges WHERE parent = ANY(frontier);
        EXIT WHEN cardinality(frontier) = 0;
        found := found || frontier;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT unnest(found));
END;
$$;

-- taskflow_announce writes the outbox messages of the tasks ids: one row per queue for the tasks
-- due now, and one row each for tasks with an eta, which a revoke can then drop.
CREATE FUNCTION taskflow_announce(ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO outbox (queue, payload, task_id, not_before)
    SELECT queue, jsonb_agg(jsonb_build_object('id', id, 'task', task) ORDER BY id), NULL, now()
    FROM tasks WHERE id = ANY(ids) AND eta IS NULL GROUP BY queue
    UNION ALL
    SELECT queue, jsonb_build_array(jsonb_build_object('id', id, 'task', task)), id, eta
    FROM tasks WHERE id = ANY(ids) AND eta IS NOT NULL;
$$;

CREATE FUNCTION taskflow_settle_dependents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ready uuid[];
    down  uuid[];
BEGIN
    IF NEW.state = 'SUCCESS' THEN
        -- Two results for the same child serialise on its row lock, so exactly one of them sees
        -- waiting reach 0. Locking the children in id order keeps two results that share several
        -- children from locking them in opposite orders.
        -- NOTE: a transaction that stores several results still locks their children one result
        -- at a time, so two such transactions can deadlock on wide fan-ins. PostgreSQL aborts one,
        -- and the worker stores its outcomes again after a backoff: slower, but nothing is lost.
        PERFORM 1 FROM tasks c
        WHERE c.id IN (SELECT child FROM task_edges WHERE parent = NEW.id) AND c.state = 'PENDING'
        ORDER BY c.id
        FOR UPDATE;
        WITH counted AS (
            UPDATE tasks c SET waiting = c.waiting - 1, updated_at = now()
            FROM task_edges e
            WHERE e.parent = NEW.id AND c.id = e.child AND c.state = 'PENDING' AND c.waiting > 0
            RETURNING c.id, c.waiting
        )
        SELECT array_agg(id) INTO ready FROM counted WHERE waiting = 0;
        IF ready IS NULL THEN
            RETURN NULL;
        END IF;

        -- Each statement of this function sees the results committed before it began, and the
        -- results written by the statement that fired it.
        WITH inputs AS (
            SELECT e.child,
                   CASE WHEN bool_or(c.pipe_many)
                        THEN jsonb_agg(coalesce(p.result, 'null'::jsonb) ORDER BY e.position)
                        ELSE (array_agg(coalesce(p.result, 'null'::jsonb) ORDER BY e.position))[1]
                   END AS value
            FROM task_edges e
            JOIN tasks c ON c.id = e.child
            JOIN tasks p ON p.id = e.parent
            WHERE e.child = ANY(ready) AND c.pipe IS NOT NULL
            GROUP BY e.child
        )
        UPDATE tasks c
        SET args = coalesce(jsonb_set(c.args, ARRAY[c.pipe], i.value), c.args),
            eta = CASE WHEN c.release_delay_ms > 0
                       THEN now() + c.release_delay_ms * interval '1 millisecond' END,
            updated_at = now()
        FROM unnest(ready) AS r(id)
        LEFT JOIN inputs i ON i.child = r.id
        WHERE c.id = r.id;
        PERFORM taskflow_announce(ready);
        PERFORM pg_notify('taskflow_outbox', '');
        RETURN NULL;
    END IF;

    -- FAILURE or REVOKED: nothing downstream can run. The revoked tasks fire this trigger in turn;
    -- the setting stops them from walking the graph again.
    IF current_setting('taskflow.cascading', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('taskflow.cascading', 'on', true);
    down := taskflow_downstream(ARRAY[NEW.id]);
    PERFORM 1 FROM tasks WHERE id = ANY(down) AND state = 'PENDING' ORDER BY id FOR UPDATE;
    UPDATE tasks SET state = 'REVOKED', finished_at = now(), updated_at = now(), revoked_by = NEW.id,
        error = format('not run: task %s, which it waits for, ended in %s', NEW.id, NEW.state)
    WHERE id = ANY(down) AND state = 'PENDING';
    PERFORM set_config('taskflow.cascading', 'off', true);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_settle_dependents
    AFTER UPDATE OF state ON tasks
    FOR EACH ROW
    WHEN (NEW.workflow_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('SUCCESS', 'FAILURE', 'REVOKED'))
    EXECUTE FUNCTION taskflow_settle_dependents();
