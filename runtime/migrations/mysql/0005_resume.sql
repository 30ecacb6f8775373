-- Faults: the last durable step of a job (`published`, `transferred`), so a
-- job that comes back after a crash or an outage resumes instead of redoing;
-- and one in-flight row per original file (queued, or held under a lease),
-- enforced by the database so concurrent enqueues never make two (MariaDB has
-- no partial index: a virtual column that is the path only while in flight).
ALTER TABLE koa_status ADD COLUMN last_step VARCHAR(16);
ALTER TABLE koa_status_history ADD COLUMN last_step VARCHAR(16);
ALTER TABLE koa_status ADD COLUMN in_flight VARCHAR(255) AS (CASE WHEN level = 0 AND (status = 'QUEUED' OR lease_owner IS NOT NULL) THEN ofname END) VIRTUAL;
CREATE UNIQUE INDEX koa_status_in_flight ON koa_status (in_flight);
