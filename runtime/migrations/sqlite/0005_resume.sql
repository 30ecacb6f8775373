-- Faults: the last durable step of a job (`published`, `transferred`), so a
-- job that comes back after a crash or an outage resumes instead of redoing;
-- and one in-flight row per original file (queued, or held under a lease),
-- enforced by the database so concurrent enqueues never make two.
ALTER TABLE koa_status ADD COLUMN last_step TEXT;
ALTER TABLE koa_status_history ADD COLUMN last_step TEXT;
CREATE UNIQUE INDEX koa_status_in_flight ON koa_status (ofname) WHERE level = 0 AND (status = 'QUEUED' OR lease_owner IS NOT NULL);
