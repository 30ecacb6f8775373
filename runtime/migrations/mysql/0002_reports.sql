-- Reports: the exposure time and the per-step timings of each job (night report).
ALTER TABLE koa_status ADD COLUMN exptime DOUBLE;
ALTER TABLE koa_status ADD COLUMN timings TEXT;
ALTER TABLE koa_status_history ADD COLUMN exptime DOUBLE;
ALTER TABLE koa_status_history ADD COLUMN timings TEXT;

-- PI data-notification bookkeeping (spec pipeline.md §21): one row per program
-- (SEMID) and instrument per run of consecutive nights.
CREATE TABLE koapi_send (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    semid VARCHAR(30) NOT NULL,
    instr VARCHAR(15) NOT NULL,
    utdate_beg DATE NOT NULL,
    utdate_end DATE NOT NULL,
    send_data BIGINT NOT NULL DEFAULT 1,
    data_notified BIGINT NOT NULL DEFAULT 0,
    send_dvd BIGINT NOT NULL DEFAULT 1,
    dvd_notified BIGINT NOT NULL DEFAULT 0,
    last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX koapi_send_semid ON koapi_send (semid, instr, utdate_beg);
