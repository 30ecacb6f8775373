-- koa-dep job store (sqlite). Column names follow the reference DEP's koa_status;
-- added: status CHECK, status_message, md5, acknowledged, attempts, leases, reprocess/transfer flags.

CREATE TABLE koa_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    level INTEGER NOT NULL DEFAULT 0,
    koaid VARCHAR(48),
    instrument VARCHAR(15) NOT NULL,
    service VARCHAR(32),
    utdatetime VARCHAR(30),
    status VARCHAR(15) NOT NULL CHECK (status IN ('QUEUED','PROCESSING','TRANSFERRING','TRANSFERRED','COMPLETE','INVALID','ERROR')),
    status_code VARCHAR(30),
    status_code_ipac VARCHAR(30),
    status_message TEXT,
    ofname VARCHAR(255) NOT NULL,
    stage_file VARCHAR(255),
    process_dir VARCHAR(255),
    archive_dir VARCHAR(255),
    creation_time TEXT,
    process_start_time TEXT,
    process_end_time TEXT,
    xfr_start_time TEXT,
    xfr_end_time TEXT,
    ipac_notify_time TEXT,
    ingest_start_time TEXT,
    ingest_copy_start_time TEXT,
    ingest_copy_end_time TEXT,
    ingest_end_time TEXT,
    ipac_response_time TEXT,
    stage_time TEXT,
    filesize_mb REAL,
    archsize_mb REAL,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint INTEGER,
    source_deleted INTEGER NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_time TEXT,
    lease_owner VARCHAR(64),
    lease_expiry TEXT,
    reprocess INTEGER NOT NULL DEFAULT 0,
    transfer INTEGER NOT NULL DEFAULT 0,
    last_mod TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX koa_status_level_koaid ON koa_status (level, koaid);
CREATE INDEX koa_status_queue ON koa_status (status, level, instrument);
CREATE INDEX koa_status_ofname ON koa_status (ofname);
CREATE INDEX koa_status_md5 ON koa_status (md5);

CREATE TABLE koa_status_history (
    history_id INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL,
    level INTEGER NOT NULL DEFAULT 0,
    koaid VARCHAR(48),
    instrument VARCHAR(15) NOT NULL,
    service VARCHAR(32),
    utdatetime VARCHAR(30),
    status VARCHAR(15) NOT NULL,
    status_code VARCHAR(30),
    status_code_ipac VARCHAR(30),
    status_message TEXT,
    ofname VARCHAR(255) NOT NULL,
    stage_file VARCHAR(255),
    process_dir VARCHAR(255),
    archive_dir VARCHAR(255),
    creation_time TEXT,
    process_start_time TEXT,
    process_end_time TEXT,
    xfr_start_time TEXT,
    xfr_end_time TEXT,
    ipac_notify_time TEXT,
    ingest_start_time TEXT,
    ingest_copy_start_time TEXT,
    ingest_copy_end_time TEXT,
    ingest_end_time TEXT,
    ipac_response_time TEXT,
    stage_time TEXT,
    filesize_mb REAL,
    archsize_mb REAL,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint INTEGER,
    source_deleted INTEGER NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_time TEXT,
    lease_owner VARCHAR(64),
    lease_expiry TEXT,
    reprocess INTEGER NOT NULL DEFAULT 0,
    transfer INTEGER NOT NULL DEFAULT 0,
    last_mod TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    history_time TEXT
);
CREATE INDEX koa_status_history_id ON koa_status_history (id);

CREATE TABLE headers (
    koaid VARCHAR(48) NOT NULL PRIMARY KEY,
    header TEXT NOT NULL,
    last_mod TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE dep_error_notify (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email_time TEXT NOT NULL,
    instrument VARCHAR(15),
    status_code VARCHAR(30),
    recipients TEXT
);
CREATE INDEX dep_error_notify_key ON dep_error_notify (instrument, status_code, email_time);
