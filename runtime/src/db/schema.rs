//! The job store's schema: what a database holds, and bringing it to what
//! koa-dep needs (`koa-dep db status`, `koa-dep db upgrade`).
//!
//! Three starting points, one path:
//! * **empty** — the migrations (`runtime/migrations/<engine>`) create it;
//! * **koa-dep's own** (sqlx's `_sqlx_migrations` table present) — pending
//!   migrations run;
//! * **KOA's reference database** (`koa_status` without `_sqlx_migrations`,
//!   as years of the Python DEP left it) — adopted **in place**: only the
//!   tables, columns and indexes koa-dep needs are added, no column other
//!   programs use is dropped or retyped, every row stays; then the
//!   migrations are recorded as applied. The status CHECK constraint is
//!   added only where no row violates it.
//!
//! Every step is a static statement per engine, checked against the
//! catalog first, so an upgrade run twice (or during a running daemon)
//! changes nothing the second time. The daemon and the CLI refuse a
//! database that still needs adopting, naming the command.

use super::{Db, DbError, DbResult, Kind, Pool};

/// What the database is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum State {
    /// No koa_status table.
    Empty,
    /// koa-dep's schema; `pending` migrations not yet applied.
    KoaDep { applied: i64, latest: i64, pending: usize },
    /// KOA's reference schema, not adopted yet.
    Reference,
}

/// One adoption step.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    pub what: String,
    pub sql: &'static str,
}

/// `koa-dep db status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub engine: &'static str,
    pub state: State,
    /// The statements an upgrade would run (migrations are named, not listed).
    pub upgrade: Vec<String>,
    /// Rows per known table.
    pub rows: Vec<(String, i64)>,
    /// Why the status CHECK constraint cannot be added (rows that violate it).
    pub status_check: Option<String>,
}

/// The statuses the CHECK constraint allows (NULL, left by the reference, passes).
const STATUSES: &str = "'QUEUED','PROCESSING','TRANSFERRING','TRANSFERRED','COMPLETE','INVALID','ERROR'";

/// A column koa-dep adds to a reference table: (table, column, MySQL, PostgreSQL, SQLite DDL).
type Column = (&'static str, &'static str, &'static str, &'static str, &'static str);

macro_rules! add_column {
    ($table:literal, $col:literal, $my:literal, $pg:literal, $lite:literal) => {
        (
            $table,
            $col,
            concat!("ALTER TABLE ", $table, " ADD COLUMN ", $col, " ", $my),
            concat!("ALTER TABLE ", $table, " ADD COLUMN ", $col, " ", $pg),
            concat!("ALTER TABLE ", $table, " ADD COLUMN ", $col, " ", $lite),
        )
    };
}

macro_rules! job_columns {
    ($table:literal) => {
        [
            add_column!($table, "status_message", "TEXT", "TEXT", "TEXT"),
            add_column!($table, "md5", "CHAR(32)", "CHAR(32)", "TEXT"),
            add_column!($table, "acknowledged", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
            add_column!($table, "attempts", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
            add_column!($table, "next_attempt_time", "DATETIME(6)", "TIMESTAMP", "TEXT"),
            add_column!($table, "lease_owner", "VARCHAR(64)", "VARCHAR(64)", "TEXT"),
            add_column!($table, "lease_expiry", "DATETIME(6)", "TIMESTAMP", "TEXT"),
            add_column!($table, "reprocess", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
            add_column!($table, "transfer", "BIGINT NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
            add_column!($table, "exptime", "DOUBLE", "DOUBLE PRECISION", "REAL"),
            add_column!($table, "timings", "TEXT", "TEXT", "TEXT"),
        ]
    };
}

const STATUS_COLUMNS: [Column; 11] = job_columns!("koa_status");
const HISTORY_COLUMNS: [Column; 11] = job_columns!("koa_status_history");
const OTHER_COLUMNS: [Column; 6] = [
    add_column!("koa_status", "last_step", "VARCHAR(16)", "VARCHAR(16)", "TEXT"),
    add_column!("koa_status_history", "last_step", "VARCHAR(16)", "VARCHAR(16)", "TEXT"),
    // the history's own key (old rows are numbered in storage order) and time
    add_column!("koa_status_history", "history_id", "BIGINT NOT NULL AUTO_INCREMENT UNIQUE", "BIGSERIAL", "INTEGER"),
    add_column!("koa_status_history", "history_time", "DATETIME(6)", "TIMESTAMP", "TEXT"),
    add_column!("dep_error_notify", "status_code", "VARCHAR(30)", "VARCHAR(30)", "TEXT"),
    add_column!("dep_error_notify", "recipients", "TEXT", "TEXT", "TEXT"),
];

/// A table koa-dep needs that the reference does not have: (table, MySQL, PostgreSQL, SQLite DDL).
type Table = (&'static str, &'static str, &'static str, &'static str);

const TABLES: [Table; 2] = [
    (
        "koapi_send",
        "CREATE TABLE koapi_send (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, semid VARCHAR(30) NOT NULL, instr VARCHAR(15) NOT NULL, \
         utdate_beg DATE NOT NULL, utdate_end DATE NOT NULL, send_data BIGINT NOT NULL DEFAULT 1, data_notified BIGINT NOT NULL DEFAULT 0, \
         send_dvd BIGINT NOT NULL DEFAULT 1, dvd_notified BIGINT NOT NULL DEFAULT 0, \
         last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE koapi_send (id BIGSERIAL PRIMARY KEY, semid VARCHAR(30) NOT NULL, instr VARCHAR(15) NOT NULL, \
         utdate_beg DATE NOT NULL, utdate_end DATE NOT NULL, send_data BIGINT NOT NULL DEFAULT 1, data_notified BIGINT NOT NULL DEFAULT 0, \
         send_dvd BIGINT NOT NULL DEFAULT 1, dvd_notified BIGINT NOT NULL DEFAULT 0, last_mod TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        "CREATE TABLE koapi_send (id INTEGER PRIMARY KEY AUTOINCREMENT, semid VARCHAR(30) NOT NULL, instr VARCHAR(15) NOT NULL, \
         utdate_beg DATE NOT NULL, utdate_end DATE NOT NULL, send_data INTEGER NOT NULL DEFAULT 1, data_notified INTEGER NOT NULL DEFAULT 0, \
         send_dvd INTEGER NOT NULL DEFAULT 1, dvd_notified INTEGER NOT NULL DEFAULT 0, last_mod TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    ),
    (
        "source_status",
        "CREATE TABLE source_status (service VARCHAR(64) NOT NULL PRIMARY KEY, owner VARCHAR(128) NOT NULL, instrument VARCHAR(15) NOT NULL, \
         state VARCHAR(8) NOT NULL, status_code VARCHAR(64), message VARCHAR(512), since DATETIME NOT NULL, updated DATETIME NOT NULL) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE source_status (service VARCHAR(64) NOT NULL PRIMARY KEY, owner VARCHAR(128) NOT NULL, instrument VARCHAR(15) NOT NULL, \
         state VARCHAR(8) NOT NULL, status_code VARCHAR(64), message VARCHAR(512), since TIMESTAMP NOT NULL, updated TIMESTAMP NOT NULL)",
        "CREATE TABLE source_status (service VARCHAR(64) NOT NULL PRIMARY KEY, owner VARCHAR(128) NOT NULL, instrument VARCHAR(15) NOT NULL, \
         state VARCHAR(8) NOT NULL, status_code VARCHAR(64), message VARCHAR(512), since TEXT NOT NULL, updated TEXT NOT NULL)",
    ),
];

/// An index koa-dep's queries need: (name, table, DDL on every engine).
const INDEXES: [(&str, &str, &str); 6] = [
    ("koa_status_queue", "koa_status", "CREATE INDEX koa_status_queue ON koa_status (status, level, instrument)"),
    ("koa_status_ofname", "koa_status", "CREATE INDEX koa_status_ofname ON koa_status (ofname)"),
    ("koa_status_md5", "koa_status", "CREATE INDEX koa_status_md5 ON koa_status (md5)"),
    ("koa_status_history_id", "koa_status_history", "CREATE INDEX koa_status_history_id ON koa_status_history (id)"),
    ("dep_error_notify_key", "dep_error_notify", "CREATE INDEX dep_error_notify_key ON dep_error_notify (instr, status_code, email_time)"),
    ("koapi_send_semid", "koapi_send", "CREATE INDEX koapi_send_semid ON koapi_send (semid, instr, utdate_beg)"),
];

/// One PI notice per (instrument, program, night, level): the insert is the dedupe.
const PI_NOTIFY_KEY: (&str, &str) =
    ("koa_pi_notify_once", "CREATE UNIQUE INDEX koa_pi_notify_once ON koa_pi_notify (instrument, semid, utdate, level)");

/// One in-flight row per original file (queued, or held under a lease):
/// the enqueue's unique key. MariaDB has no partial index, so a virtual
/// column holds the path only while the row is in flight.
const IN_FLIGHT_KEY: &str = "koa_status_in_flight";
const IN_FLIGHT_MY: [&str; 2] = [
    "ALTER TABLE koa_status ADD COLUMN in_flight VARCHAR(255) AS (CASE WHEN level = 0 AND (status = 'QUEUED' OR lease_owner IS NOT NULL) THEN ofname END) VIRTUAL",
    "CREATE UNIQUE INDEX koa_status_in_flight ON koa_status (in_flight)",
];
const IN_FLIGHT_PARTIAL: &str =
    "CREATE UNIQUE INDEX koa_status_in_flight ON koa_status (ofname) WHERE level = 0 AND (status = 'QUEUED' OR lease_owner IS NOT NULL)";

const STATUS_CHECK: (&str, &str) =
    ("koa_status_status", "ALTER TABLE koa_status ADD CONSTRAINT koa_status_status CHECK (status IN ('QUEUED','PROCESSING','TRANSFERRING','TRANSFERRED','COMPLETE','INVALID','ERROR'))");

/// Tables whose rows `db status` counts.
const COUNTED: [&str; 9] =
    ["koa_status", "koa_status_history", "headers", "dep_error_notify", "koa_pi_notify", "koapi_send", "source_status", "koa_summary", "koa_storage"];

fn migrator(kind: Kind) -> sqlx::migrate::Migrator {
    match kind {
        Kind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Kind::Postgres => sqlx::migrate!("./migrations/postgres"),
        Kind::MySql => sqlx::migrate!("./migrations/mysql"),
    }
}

impl Db {
    /// The tables of the database (lower case).
    async fn tables(&self) -> DbResult<Vec<String>> {
        let names: Vec<String> = match self.kind() {
            Kind::MySql => scalar!(self, String, fetch_all, "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()")?,
            Kind::Postgres => scalar!(self, String, fetch_all, "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = current_schema()")?,
            Kind::Sqlite => scalar!(self, String, fetch_all, "SELECT name FROM sqlite_master WHERE type = 'table'")?,
        };
        Ok(names.into_iter().map(|n| n.to_lowercase()).collect())
    }

    /// The columns of `table` (lower case).
    async fn columns(&self, table: &str) -> DbResult<Vec<String>> {
        let names: Vec<String> = match self.kind() {
            Kind::MySql => scalar!(
                self,
                String,
                fetch_all,
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
                table
            )?,
            Kind::Postgres => scalar!(
                self,
                String,
                fetch_all,
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
                table
            )?,
            Kind::Sqlite => scalar!(self, String, fetch_all, "SELECT name FROM pragma_table_info(?)", table)?,
        };
        Ok(names.into_iter().map(|n| n.to_lowercase()).collect())
    }

    /// The index names of `table` (lower case).
    async fn indexes(&self, table: &str) -> DbResult<Vec<String>> {
        let names: Vec<String> = match self.kind() {
            Kind::MySql => scalar!(
                self,
                String,
                fetch_all,
                "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?",
                table
            )?,
            Kind::Postgres => scalar!(self, String, fetch_all, "SELECT CAST(indexname AS CHAR) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?", table)?,
            Kind::Sqlite => scalar!(self, String, fetch_all, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", table)?,
        };
        Ok(names.into_iter().map(|n| n.to_lowercase()).collect())
    }

    /// Whether the status CHECK constraint is in place.
    async fn has_status_check(&self) -> DbResult<bool> {
        let n = match self.kind() {
            Kind::MySql => scalar!(
                self,
                i64,
                fetch_one,
                "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = DATABASE() AND table_name = 'koa_status' \
                 AND constraint_type = 'CHECK'"
            )?,
            Kind::Postgres => scalar!(
                self,
                i64,
                fetch_one,
                "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = current_schema() AND table_name = 'koa_status' \
                 AND constraint_type = 'CHECK' AND constraint_name NOT LIKE '%not_null%'"
            )?,
            // SQLite cannot add a constraint to a table: the migrations' table has it or none can
            Kind::Sqlite => 1,
        };
        Ok(n > 0)
    }

    /// What the database is.
    pub async fn schema_state(&self) -> DbResult<State> {
        let tables = self.tables().await?;
        if !tables.iter().any(|t| t == "koa_status") {
            return Ok(State::Empty);
        }
        if !tables.iter().any(|t| t == "_sqlx_migrations") {
            return Ok(State::Reference);
        }
        let applied = scalar!(self, i64, fetch_all, "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")?;
        let m = migrator(self.kind());
        let latest = m.iter().map(|x| x.version).max().unwrap_or(0);
        let pending = m.iter().filter(|x| !applied.contains(&x.version)).count();
        Ok(State::KoaDep { applied: applied.last().copied().unwrap_or(0), latest, pending })
    }

    /// The adoption steps a reference database still needs.
    async fn adoption_steps(&self) -> DbResult<(Vec<Step>, Option<String>)> {
        let kind = self.kind();
        let pick = |c: &Column| match kind {
            Kind::MySql => c.2,
            Kind::Postgres => c.3,
            Kind::Sqlite => c.4,
        };
        let mut steps = Vec::new();
        let tables = self.tables().await?;
        for t in TABLES.iter().filter(|t| !tables.iter().any(|have| have == t.0)) {
            let sql = match kind {
                Kind::MySql => t.1,
                Kind::Postgres => t.2,
                Kind::Sqlite => t.3,
            };
            steps.push(Step { what: format!("create table {}", t.0), sql });
        }
        for table in ["koa_status", "koa_status_history", "dep_error_notify"] {
            let have = self.columns(table).await?;
            for c in STATUS_COLUMNS.iter().chain(&HISTORY_COLUMNS).chain(&OTHER_COLUMNS).filter(|c| c.0 == table) {
                if !have.iter().any(|h| h == c.1) {
                    steps.push(Step { what: format!("add {}.{}", c.0, c.1), sql: pick(c) });
                }
            }
        }
        for (name, table, sql) in INDEXES {
            let exists = tables.iter().any(|t| t == table) && self.indexes(table).await?.iter().any(|i| i == name);
            if !exists {
                steps.push(Step { what: format!("index {name}"), sql });
            }
        }
        if tables.iter().any(|t| t == "koa_pi_notify") && !self.indexes("koa_pi_notify").await?.iter().any(|i| i == PI_NOTIFY_KEY.0) {
            let dupes = scalar!(
                self,
                i64,
                fetch_one,
                "SELECT COUNT(*) FROM (SELECT instrument FROM koa_pi_notify GROUP BY instrument, semid, utdate, level HAVING COUNT(*) > 1) d"
            )?;
            if dupes == 0 {
                steps.push(Step { what: "unique PI notices".into(), sql: PI_NOTIFY_KEY.1 });
            }
        }
        let mut note = None;
        if !self.indexes("koa_status").await?.iter().any(|i| i == IN_FLIGHT_KEY) {
            // rows the reference left QUEUED twice for one file keep the key from being added
            let dupes = scalar!(
                self,
                i64,
                fetch_one,
                "SELECT COUNT(*) FROM (SELECT ofname FROM koa_status WHERE level = 0 AND status = 'QUEUED' GROUP BY ofname HAVING COUNT(*) > 1) d"
            )?;
            if dupes > 0 {
                note = Some(format!("in-flight key not added: {dupes} files have more than one QUEUED row"));
            } else if kind == Kind::MySql {
                let has_column = self.columns("koa_status").await?.iter().any(|c| c == "in_flight");
                if !has_column {
                    steps.push(Step { what: "in-flight column".into(), sql: IN_FLIGHT_MY[0] });
                }
                steps.push(Step { what: "in-flight key".into(), sql: IN_FLIGHT_MY[1] });
            } else {
                steps.push(Step { what: "in-flight key".into(), sql: IN_FLIGHT_PARTIAL });
            }
        }
        if kind != Kind::Sqlite && !self.has_status_check().await? {
            let bad = scalar!(
                self,
                i64,
                fetch_one,
                "SELECT COUNT(*) FROM koa_status WHERE status NOT IN ('QUEUED','PROCESSING','TRANSFERRING','TRANSFERRED','COMPLETE','INVALID','ERROR')"
            )?;
            if bad == 0 {
                steps.push(Step { what: "status check constraint".into(), sql: STATUS_CHECK.1 });
            } else {
                let why = format!("status check not added: {bad} koa_status rows have a status outside {STATUSES}");
                note = Some(match note {
                    Some(n) => format!("{n}; {why}"),
                    None => why,
                });
            }
        }
        Ok((steps, note))
    }

    /// `koa-dep db status`.
    pub async fn schema_report(&self) -> DbResult<Report> {
        let state = self.schema_state().await?;
        let (upgrade, status_check) = match &state {
            State::Empty => (vec![format!("create koa-dep's schema (migrations 1–{})", migrator(self.kind()).iter().count())], None),
            State::KoaDep { pending, .. } => ((*pending > 0).then(|| format!("apply {pending} pending migration(s)")).into_iter().collect(), None),
            State::Reference => {
                let (steps, note) = self.adoption_steps().await?;
                let mut list: Vec<String> = steps.iter().map(|s| format!("{};", s.sql)).collect();
                list.push("record koa-dep's migrations as applied (_sqlx_migrations)".into());
                (list, note)
            }
        };
        let tables = self.tables().await?;
        let mut rows = Vec::new();
        for t in COUNTED.iter().filter(|t| tables.iter().any(|have| have == *t)) {
            rows.push((t.to_string(), self.count_rows(t).await?));
        }
        Ok(Report { engine: kind_name(self.kind()), state, upgrade, rows, status_check })
    }

    async fn count_rows(&self, table: &str) -> DbResult<i64> {
        // one static statement per table (no SQL built from names)
        Ok(match table {
            "koa_status" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_status")?,
            "koa_status_history" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_status_history")?,
            "headers" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM headers")?,
            "dep_error_notify" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM dep_error_notify")?,
            "koa_pi_notify" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_pi_notify")?,
            "koapi_send" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koapi_send")?,
            "source_status" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM source_status")?,
            "koa_summary" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_summary")?,
            "koa_storage" => scalar!(self, i64, fetch_one, "SELECT COUNT(*) FROM koa_storage")?,
            _ => 0,
        })
    }

    /// `koa-dep db upgrade`: migrate an empty or koa-dep database, adopt a
    /// reference one; returns what was (or, dry, would be) done.
    pub async fn upgrade(&self, dry_run: bool) -> DbResult<Vec<String>> {
        let report = self.schema_report().await?;
        if dry_run {
            return Ok(report.upgrade);
        }
        if report.state == State::Reference {
            let (steps, _) = self.adoption_steps().await?;
            for s in &steps {
                tracing::info!("db upgrade: {}", s.what);
                execute!(self, s.sql)?;
            }
            self.record_migrations().await?;
        } else {
            self.migrate().await?;
        }
        Ok(report.upgrade)
    }

    /// Record every migration as applied (after an adoption brought the
    /// schema to what they would have made).
    async fn record_migrations(&self) -> DbResult<()> {
        let m = migrator(self.kind());
        match &self.pool {
            Pool::Sqlite(p) => m.skip(p, None).await?,
            Pool::Postgres(p) => m.skip(p, None).await?,
            Pool::MySql(p) => m.skip(p, None).await?,
        }
        Ok(())
    }

    /// Run pending migrations.
    pub(crate) async fn migrate(&self) -> DbResult<()> {
        let m = migrator(self.kind());
        match &self.pool {
            Pool::Sqlite(p) => m.run(p).await?,
            Pool::Postgres(p) => m.run(p).await?,
            Pool::MySql(p) => m.run(p).await?,
        }
        Ok(())
    }

    /// What every connection does first: an empty or koa-dep database is
    /// migrated; a reference database is refused until it is adopted.
    pub(crate) async fn ensure_schema(&self) -> DbResult<()> {
        match self.schema_state().await? {
            State::KoaDep { applied, latest, .. } if applied > latest => Err(DbError::Schema(format!(
                "this database's schema (version {applied}) is newer than this koa-dep knows (version {latest}): run the koa-dep that upgraded it"
            ))),
            State::Reference => Err(DbError::Schema(
                "this database holds KOA's reference tables, not yet adopted by koa-dep: see `koa-dep db status`, then run `koa-dep db upgrade`"
                    .into(),
            )),
            _ => self.migrate().await,
        }
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgresql",
        Kind::MySql => "mariadb/mysql",
    }
}

impl Report {
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let state = match &self.state {
            State::Empty => "empty".to_string(),
            State::KoaDep { applied, latest, pending } => format!("koa-dep schema version {applied} (latest {latest}, {pending} pending)"),
            State::Reference => "KOA reference schema, not adopted yet (run `koa-dep db upgrade`)".to_string(),
        };
        let _ = writeln!(s, "engine: {}\nschema: {state}", self.engine);
        for (t, n) in &self.rows {
            let _ = writeln!(s, "  {t:<20} {n:>10} rows");
        }
        if self.upgrade.is_empty() {
            let _ = writeln!(s, "upgrade: nothing to do");
        } else {
            let _ = writeln!(s, "upgrade would:");
            for u in &self.upgrade {
                let _ = writeln!(s, "  {u}");
            }
        }
        if let Some(n) = &self.status_check {
            let _ = writeln!(s, "{n}");
        }
        s
    }
}
