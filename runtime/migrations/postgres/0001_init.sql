-- koa-dep job store (postgres). Column names follow the reference DEP's koa_status;
-- added: status CHECK, status_message, md5, acknowledged, attempts, leases, reprocess/transfer flags.

CREATE TABLE koa_status (
    id BIGSERIAL PRIMARY KEY,
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
    creation_time TIMESTAMP,
    process_start_time TIMESTAMP,
    process_end_time TIMESTAMP,
    xfr_start_time TIMESTAMP,
    xfr_end_time TIMESTAMP,
    ipac_notify_time TIMESTAMP,
    ingest_start_time TIMESTAMP,
    ingest_copy_start_time TIMESTAMP,
    ingest_copy_end_time TIMESTAMP,
    ingest_end_time TIMESTAMP,
    ipac_response_time TIMESTAMP,
    stage_time TIMESTAMP,
    filesize_mb DOUBLE PRECISION,
    archsize_mb DOUBLE PRECISION,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint BIGINT,
    source_deleted BIGINT NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_time TIMESTAMP,
    lease_owner VARCHAR(64),
    lease_expiry TIMESTAMP,
    reprocess BIGINT NOT NULL DEFAULT 0,
    transfer BIGINT NOT NULL DEFAULT 0,
    last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX koa_status_level_koaid ON koa_status (level, koaid);
CREATE INDEX koa_status_queue ON koa_status (status, level, instrument);
CREATE INDEX koa_status_ofname ON koa_status (ofname);
CREATE INDEX koa_status_md5 ON koa_status (md5);

CREATE TABLE koa_status_history (
    history_id BIGSERIAL PRIMARY KEY,
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
    creation_time TIMESTAMP,
    process_start_time TIMESTAMP,
    process_end_time TIMESTAMP,
    xfr_start_time TIMESTAMP,
    xfr_end_time TIMESTAMP,
    ipac_notify_time TIMESTAMP,
    ingest_start_time TIMESTAMP,
    ingest_copy_start_time TIMESTAMP,
    ingest_copy_end_time TIMESTAMP,
    ingest_end_time TIMESTAMP,
    ipac_response_time TIMESTAMP,
    stage_time TIMESTAMP,
    filesize_mb DOUBLE PRECISION,
    archsize_mb DOUBLE PRECISION,
    koaimtyp VARCHAR(20),
    semid VARCHAR(30),
    propint BIGINT,
    source_deleted BIGINT NOT NULL DEFAULT 0,
    md5 CHAR(32),
    acknowledged BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_time TIMESTAMP,
    lease_owner VARCHAR(64),
    lease_expiry TIMESTAMP,
    reprocess BIGINT NOT NULL DEFAULT 0,
    transfer BIGINT NOT NULL DEFAULT 0,
    last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    history_time TIMESTAMP
);
CREATE INDEX koa_status_history_id ON koa_status_history (id);

CREATE TABLE headers (
    koaid VARCHAR(48) NOT NULL PRIMARY KEY,
    header JSONB NOT NULL,
    last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE dep_error_notify (
    id BIGSERIAL PRIMARY KEY,
    email_time TIMESTAMP NOT NULL,
    instrument VARCHAR(15),
    status_code VARCHAR(30),
    recipients TEXT
);
CREATE INDEX dep_error_notify_key ON dep_error_notify (instrument, status_code, email_time);
