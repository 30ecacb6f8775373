-- Reports: the exposure time and the per-step timings of each job (night report).
ALTER TABLE koa_status ADD COLUMN exptime REAL;
ALTER TABLE koa_status ADD COLUMN timings TEXT;
ALTER TABLE koa_status_history ADD COLUMN exptime REAL;
ALTER TABLE koa_status_history ADD COLUMN timings TEXT;

-- PI data-notification bookkeeping (spec pipeline.md §21): one row per program
-- (SEMID) and instrument per run of consecutive nights.
CREATE TABLE koapi_send (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    semid VARCHAR(30) NOT NULL,
    instr VARCHAR(15) NOT NULL,
    utdate_beg DATE NOT NULL,
    utdate_end DATE NOT NULL,
    send_data INTEGER NOT NULL DEFAULT 1,
    data_notified INTEGER NOT NULL DEFAULT 0,
    send_dvd INTEGER NOT NULL DEFAULT 1,
    dvd_notified INTEGER NOT NULL DEFAULT 0,
    last_mod TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX koapi_send_semid ON koapi_send (semid, instr, utdate_beg);
