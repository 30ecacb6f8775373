-- Keyword sources: the last known state of each service's source (the daemon
-- writes it on every change), for `koa-dep report sources` and `report errors`.
CREATE TABLE source_status (
    service VARCHAR(64) NOT NULL PRIMARY KEY,
    owner VARCHAR(128) NOT NULL,
    instrument VARCHAR(15) NOT NULL,
    state VARCHAR(8) NOT NULL CHECK (state IN ('UP', 'DOWN', 'ERROR')),
    status_code VARCHAR(64),
    message VARCHAR(512),
    since DATETIME NOT NULL,
    updated DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
