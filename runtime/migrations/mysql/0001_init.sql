-- koa-dep job store (mysql). Column names follow the reference DEP's koa_status;
-- added: status CHECK, status_message, md5, acknowledged, attempts, leases, reprocess/transfer flags.

CREATE TABLE koa_status (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    level BIGINT NOT NULL DEFAULT 0,
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
    creation_time DATETIME(6),
    process_start_time DATETIME(6),
    process_end_time DATETIME(6),
    xfr_start_time DATETIME(6),
    xfr_end_time DATETIME(6),
    ipac_notify_time DATETIME(6),
    ingest_start_time DATETIME(6),
    ingest_copy_start_time DATETIME(6),
    ingest_copy_end_time DATETIME(6),
    ingest_end_time DATETIME(6),
    ipac_response_time DATETIME(6),
    stage_time DATETIME(6),
    filesize_mb DOUBLE,
    archsize_mb DOUBLE,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint BIGINT,
    source_deleted BIGINT NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_time DATETIME(6),
    lease_owner VARCHAR(64),
    lease_expiry DATETIME(6),
    reprocess BIGINT NOT NULL DEFAULT 0,
    transfer BIGINT NOT NULL DEFAULT 0,
    last_mod DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE UNIQUE INDEX koa_status_level_koaid ON koa_status (level, koaid);
CREATE INDEX koa_status_queue ON koa_status (status, level, instrument);
CREATE INDEX koa_status_ofname ON koa_status (ofname);
CREATE INDEX koa_status_md5 ON koa_status (md5);

CREATE TABLE koa_status_history (
    history_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id BIGINT NOT NULL,
    level BIGINT NOT NULL DEFAULT 0,
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
    creation_time DATETIME(6),
    process_start_time DATETIME(6),
    process_end_time DATETIME(6),
    xfr_start_time DATETIME(6),
    xfr_end_time DATETIME(6),
    ipac_notify_time DATETIME(6),
    ingest_start_time DATETIME(6),
    ingest_copy_start_time DATETIME(6),
    ingest_copy_end_time DATETIME(6),
    ingest_end_time DATETIME(6),
    ipac_response_time DATETIME(6),
    stage_time DATETIME(6),
    filesize_mb DOUBLE,
    archsize_mb DOUBLE,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint BIGINT,
    source_deleted BIGINT NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_time DATETIME(6),
    lease_owner VARCHAR(64),
    lease_expiry DATETIME(6),
    reprocess BIGINT NOT NULL DEFAULT 0,
    transfer BIGINT NOT NULL DEFAULT 0,
    last_mod DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    history_time DATETIME(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX koa_status_history_id ON koa_status_history (id);

CREATE TABLE headers (
    koaid VARCHAR(48) NOT NULL PRIMARY KEY,
    header JSON NOT NULL,
    last_mod DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE dep_error_notify (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email_time DATETIME(6) NOT NULL,
    instrument VARCHAR(15),
    status_code VARCHAR(30),
    recipients TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX dep_error_notify_key ON dep_error_notify (instrument, status_code, email_time);
