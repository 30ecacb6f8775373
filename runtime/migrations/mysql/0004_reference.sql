-- The reference's names and tables where koa-dep had its own: dep_error_notify's
-- instrument column is `instr` (as in KOA's database), and koa_pi_notify (the
-- ingest callback's PI notices) with a unique key, so the insert is the dedupe.
ALTER TABLE dep_error_notify CHANGE COLUMN instrument instr VARCHAR(15);
CREATE TABLE koa_pi_notify (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    instrument VARCHAR(15),
    semid VARCHAR(15),
    utdate DATE,
    level BIGINT,
    pi_email VARCHAR(64),
    last_mod DATETIME DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE UNIQUE INDEX koa_pi_notify_once ON koa_pi_notify (instrument, semid, utdate, level);
