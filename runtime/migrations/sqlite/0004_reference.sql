-- The reference's names and tables where koa-dep had its own: dep_error_notify's
-- instrument column is `instr` (as in KOA's database), and koa_pi_notify (the
-- ingest callback's PI notices) with a unique key, so the insert is the dedupe.
ALTER TABLE dep_error_notify RENAME COLUMN instrument TO instr;
DROP INDEX dep_error_notify_key;
CREATE INDEX dep_error_notify_key ON dep_error_notify (instr, status_code, email_time);
CREATE TABLE koa_pi_notify (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instrument VARCHAR(15),
    semid VARCHAR(15),
    utdate DATE,
    level INTEGER,
    pi_email VARCHAR(64),
    last_mod TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX koa_pi_notify_once ON koa_pi_notify (instrument, semid, utdate, level);
