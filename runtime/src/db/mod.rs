//! The job store (design §7): koa_status, koa_status_history, headers and
//! dep_error_notify with the reference's column names, on SQLite (default),
//! PostgreSQL or MariaDB through sqlx, with migrations. One code path: every
//! statement is a static string with `?` placeholders (rewritten to `$n` for
//! PostgreSQL once) and bound parameters — no SQL is built from values.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// `SELECT <row columns> FROM koa_status <tail>` as one static string.
macro_rules! const_format_row {
    ($tail:literal) => {
        concat!(
            "SELECT id, COALESCE(level, 0) AS level, koaid, instrument, service, CAST(utdatetime AS CHAR) AS utdatetime, \
             COALESCE(status, '') AS status, status_code, status_message, COALESCE(ofname, '') AS ofname, stage_file, process_dir, creation_time, process_start_time, process_end_time, xfr_start_time, xfr_end_time, \
             filesize_mb, archsize_mb, koaimtyp, semid, propint, md5, acknowledged, attempts, reprocess, transfer, lease_owner, lease_expiry, \
             archive_dir, status_code_ipac, ipac_notify_time, ipac_response_time, exptime, timings, last_step \
             FROM koa_status ",
            $tail
        )
    };
}

/// Job status (CHECK-enforced in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Queued,
    Processing,
    Transferring,
    Transferred,
    Complete,
    Invalid,
    Error,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Queued,
        Status::Processing,
        Status::Transferring,
        Status::Transferred,
        Status::Complete,
        Status::Invalid,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "QUEUED",
            Status::Processing => "PROCESSING",
            Status::Transferring => "TRANSFERRING",
            Status::Transferred => "TRANSFERRED",
            Status::Complete => "COMPLETE",
            Status::Invalid => "INVALID",
            Status::Error => "ERROR",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| format!("unknown status {s:?}"))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A koa_status row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct StatusRow {
    pub id: i64,
    pub level: i64,
    pub koaid: Option<String>,
    pub instrument: String,
    pub service: Option<String>,
    pub utdatetime: Option<String>,
    pub status: String,
    pub status_code: Option<String>,
    pub status_message: Option<String>,
    pub ofname: String,
    pub stage_file: Option<String>,
    pub process_dir: Option<String>,
    pub creation_time: Option<NaiveDateTime>,
    pub process_start_time: Option<NaiveDateTime>,
    pub process_end_time: Option<NaiveDateTime>,
    pub xfr_start_time: Option<NaiveDateTime>,
    pub xfr_end_time: Option<NaiveDateTime>,
    pub filesize_mb: Option<f64>,
    pub archsize_mb: Option<f64>,
    pub koaimtyp: Option<String>,
    pub semid: Option<String>,
    pub propint: Option<i64>,
    pub md5: Option<String>,
    pub acknowledged: i64,
    pub attempts: i64,
    pub reprocess: i64,
    pub transfer: i64,
    pub lease_owner: Option<String>,
    pub lease_expiry: Option<NaiveDateTime>,
    /// Where the products were transferred to.
    pub archive_dir: Option<String>,
    pub status_code_ipac: Option<String>,
    pub ipac_notify_time: Option<NaiveDateTime>,
    pub ipac_response_time: Option<NaiveDateTime>,
    /// Exposure time of the frame (s), from ELAPTIME/EXPTIME/ITIME.
    pub exptime: Option<f64>,
    /// Seconds per pipeline step, as a JSON object.
    pub timings: Option<String>,
    /// The job's last durable step (`published`, `transferred`): where a
    /// job that comes back after a crash or an outage resumes.
    pub last_step: Option<String>,
}

impl StatusRow {
    /// Whether the row holds archived products, or is being archived by a
    /// koa-dep job (a lease): COMPLETE, TRANSFERRED, TRANSFERRING, IPAC's
    /// WARNING, or PROCESSING/QUEUED under a lease. A PROCESSING row the
    /// reference left behind (no lease) did not finish: its KOAID may be
    /// taken over by a job with the same content ([`Db::release_koaid`]).
    pub fn is_archived(&self) -> bool {
        match self.status.as_str() {
            "COMPLETE" | "TRANSFERRED" | "TRANSFERRING" | "WARNING" => true,
            "PROCESSING" | "QUEUED" => self.lease_owner.is_some(),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?} (use sqlite://, postgres:// or mysql://)")]
    Url(String),
    #[error("{0}")]
    Schema(String),
}

impl DbError {
    /// The server did not answer (down, unreachable, timed out) — as
    /// opposed to answering with a refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)))
    }

    /// A unique-index violation (e.g. a KOAID taken by another row).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Which engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// The job store.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
}

/// `?` → `$1, $2, …` for PostgreSQL, computed once per static statement;
/// also `AS CHAR)` → `AS TEXT)` (MySQL casts to text with CHAR, which
/// PostgreSQL reads as one character).
pub(crate) fn pg(sql: &'static str) -> &'static str {
    static CACHE: Mutex<Option<HashMap<&'static str, &'static str>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(sql) {
        return s;
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_str = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_str = !in_str;
                out.push(c);
            }
            '?' if !in_str => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    let out = out.replace("AS CHAR)", "AS TEXT)");
    let leaked: &'static str = Box::leak(out.into_boxed_str());
    map.insert(sql, leaked);
    leaked
}

/// Run one statement on whichever pool: `run!(db, SQL, method, binds…)`.
/// `method` is `execute` (→ rows affected), or a closure-like form below.
macro_rules! execute {
    ($db:expr, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let sql: &'static str = $sql;
        match &$db.pool {
            $crate::db::Pool::Sqlite(p) => sqlx::query(sql)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()),
            $crate::db::Pool::Postgres(p) => sqlx::query($crate::db::pg(sql))$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()),
            $crate::db::Pool::MySql(p) => sqlx::query(sql)$(.bind($arg))*.execute(p).await.map(|r| r.rows_affected()),
        }
    }};
}

/// Fetch rows as `T: FromRow`: `fetch!(db, T, fetch_all|fetch_optional|fetch_one, SQL, binds…)`.
macro_rules! fetch {
    ($db:expr, $t:ty, $method:ident, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let sql: &'static str = $sql;
        match &$db.pool {
            $crate::db::Pool::Sqlite(p) => sqlx::query_as::<_, $t>(sql)$(.bind($arg))*.$method(p).await,
            $crate::db::Pool::Postgres(p) => sqlx::query_as::<_, $t>($crate::db::pg(sql))$(.bind($arg))*.$method(p).await,
            $crate::db::Pool::MySql(p) => sqlx::query_as::<_, $t>(sql)$(.bind($arg))*.$method(p).await,
        }
    }};
}

/// Fetch a single column: `scalar!(db, T, method, SQL, binds…)`.
macro_rules! scalar {
    ($db:expr, $t:ty, $method:ident, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let sql: &'static str = $sql;
        match &$db.pool {
            $crate::db::Pool::Sqlite(p) => sqlx::query_scalar::<_, $t>(sql)$(.bind($arg))*.$method(p).await,
            $crate::db::Pool::Postgres(p) => sqlx::query_scalar::<_, $t>($crate::db::pg(sql))$(.bind($arg))*.$method(p).await,
            $crate::db::Pool::MySql(p) => sqlx::query_scalar::<_, $t>(sql)$(.bind($arg))*.$method(p).await,
        }
    }};
}


/// Text for a `LIKE … ESCAPE '!'` pattern that matches it literally.
pub(crate) fn like_literal(s: &str) -> String {
    s.replace('!', "!!").replace('%', "!%").replace('_', "!_")
}

/// Timestamp "now" in UTC, second precision as the reference stores it.
pub fn now() -> NaiveDateTime {
    let n = chrono::Utc::now().naive_utc();
    n - chrono::Duration::nanoseconds(n.and_utc().timestamp_subsec_nanos() as i64)
}

/// A new koa_status row.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    pub level: i64,
    pub instrument: &'a str,
    pub service: Option<&'a str>,
    pub ofname: &'a str,
    pub status: Status,
    pub reprocess: bool,
    pub transfer: bool,
    pub stage_file: Option<&'a str>,
    pub koaid: Option<&'a str>,
}

/// Columns set when a job ends.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub status: Option<Status>,
    pub status_code: Option<String>,
    pub status_message: Option<String>,
    pub process_dir: Option<String>,
    pub filesize_mb: Option<f64>,
    pub archsize_mb: Option<f64>,
    pub koaimtyp: Option<String>,
    pub semid: Option<String>,
    pub propint: Option<i64>,
    pub exptime: Option<f64>,
    /// JSON object of seconds per step.
    pub timings: Option<String>,
}

impl Db {
    /// Connect (creating an SQLite file if needed) and bring koa-dep's own
    /// schema up to date; a database that holds KOA's reference tables is
    /// refused until `koa-dep db upgrade` adopted it ([`schema`]).
    pub async fn connect(url: &str, max_connections: u32) -> DbResult<Db> {
        let db = Db::open(url, max_connections).await?;
        db.ensure_schema().await?;
        Ok(db)
    }

    /// A job store whose server may not answer yet: connections are made
    /// when first needed (the daemon starting during a database outage).
    /// The schema is checked by the caller once the server answers.
    pub fn lazy(url: &str, max_connections: u32) -> DbResult<Db> {
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Pool::Postgres(PgPoolOptions::new().max_connections(max_connections.max(1)).acquire_timeout(Duration::from_secs(10)).connect_lazy(url)?)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            Pool::MySql(MySqlPoolOptions::new().max_connections(max_connections.max(1)).acquire_timeout(Duration::from_secs(10)).connect_lazy(&url)?)
        } else {
            return Err(DbError::Url(url.into()));
        };
        Ok(Db { pool })
    }

    /// Connect without touching the schema (`koa-dep db status`/`upgrade`).
    pub async fn open(url: &str, max_connections: u32) -> DbResult<Db> {
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            Pool::Sqlite(SqlitePoolOptions::new().max_connections(max_connections.max(1)).connect_with(opts).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let p = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Pool::Postgres(p)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            let p = MySqlPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await?;
            Pool::MySql(p)
        } else {
            return Err(DbError::Url(url.into()));
        };
        Ok(Db { pool })
    }

    pub fn kind(&self) -> Kind {
        match self.pool {
            Pool::Sqlite(_) => Kind::Sqlite,
            Pool::Postgres(_) => Kind::Postgres,
            Pool::MySql(_) => Kind::MySql,
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
        }
    }

    /// Insert a koa_status row; returns its id.
    pub async fn insert_job(&self, j: &NewJob<'_>) -> DbResult<i64> {
        let id = scalar!(
            self,
            i64,
            fetch_one,
            "INSERT INTO koa_status (level, instrument, service, ofname, status, creation_time, reprocess, transfer, stage_file, koaid) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            j.level,
            j.instrument,
            j.service,
            j.ofname,
            j.status.as_str(),
            now(),
            j.reprocess as i64,
            j.transfer as i64,
            j.stage_file,
            j.koaid
        )?;
        Ok(id)
    }

    pub async fn get(&self, id: i64) -> DbResult<Option<StatusRow>> {
        Ok(fetch!(self, StatusRow, fetch_optional, const_format_row!("WHERE id = ?"), id)?)
    }

    /// Newest row of a level and instrument for an original path, preferring
    /// rows that hold a KOAID (a refused duplicate never does).
    pub async fn latest_by_ofname(&self, level: i64, instrument: &str, ofname: &str) -> DbResult<Option<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_optional,
            const_format_row!(
                "WHERE level = ? AND instrument = ? AND ofname = ? \
                 ORDER BY CASE WHEN koaid IS NULL THEN 1 ELSE 0 END, id DESC LIMIT 1"
            ),
            level,
            instrument,
            ofname
        )?)
    }

    /// Newest row (any level/instrument) for an original path.
    pub async fn latest_any_by_ofname(&self, ofname: &str) -> DbResult<Option<StatusRow>> {
        Ok(fetch!(self, StatusRow, fetch_optional, const_format_row!("WHERE ofname = ? ORDER BY id DESC LIMIT 1"), ofname)?)
    }

    /// The row holding a KOAID at a level.
    pub async fn by_koaid(&self, level: i64, koaid: &str) -> DbResult<Option<StatusRow>> {
        Ok(fetch!(self, StatusRow, fetch_optional, const_format_row!("WHERE level = ? AND koaid = ?"), level, koaid)?)
    }

    /// Rows already archived (not INVALID/ERROR) with this content.
    pub async fn by_md5(&self, level: i64, md5: &str) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_all,
            const_format_row!("WHERE level = ? AND md5 = ? AND status NOT IN ('INVALID', 'ERROR') ORDER BY id"),
            level,
            md5
        )?)
    }

    /// KOAIDs at a level that start with a prefix (`NR.20190615.12571.`).
    pub async fn koaids_like(&self, level: i64, prefix: &str) -> DbResult<Vec<String>> {
        let pattern = format!("{}%", like_literal(prefix));
        Ok(scalar!(
            self,
            String,
            fetch_all,
            "SELECT koaid FROM koa_status WHERE level = ? AND koaid LIKE ? ESCAPE '!'",
            level,
            pattern
        )?)
    }

    /// Mark a job PROCESSING (start of a run). A job claimed from the queue
    /// already counted its attempt and holds its lease; any other run (the
    /// command line, `--dbid`) counts its attempt and takes a lease for
    /// `owner` here, so no PROCESSING row is ever without an owner and an expiry.
    pub async fn start_processing(&self, id: i64, claim: Option<(&str, Duration)>) -> DbResult<()> {
        match claim {
            None => execute!(
                self,
                "UPDATE koa_status SET status = 'PROCESSING', status_code = NULL, status_message = NULL, process_start_time = ? WHERE id = ?",
                now(),
                id
            )?,
            Some((owner, lease)) => execute!(
                self,
                "UPDATE koa_status SET status = 'PROCESSING', status_code = NULL, status_message = NULL, process_start_time = ?, \
                 attempts = attempts + 1, lease_owner = ?, lease_expiry = ? WHERE id = ?",
                now(),
                owner,
                now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60)),
                id
            )?,
        };
        Ok(())
    }

    /// The job's last durable step (`published`, `transferred`).
    pub async fn set_step(&self, id: i64, step: &str) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET last_step = ? WHERE id = ?", step, id)?;
        Ok(())
    }

    /// The level-0 row of a path that is in flight: queued, or held under a
    /// lease by a running job (the unique `koa_status_in_flight` key).
    pub async fn in_flight(&self, ofname: &str) -> DbResult<Option<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_optional,
            const_format_row!("WHERE level = 0 AND ofname = ? AND (status = 'QUEUED' OR lease_owner IS NOT NULL) ORDER BY id DESC LIMIT 1"),
            ofname
        )?)
    }

    /// Reprocessing: copy the row to koa_status_history and reset the
    /// processing columns (spec §19).
    pub async fn archive_and_reset(&self, id: i64) -> DbResult<()> {
        execute!(
            self,
            "INSERT INTO koa_status_history (id, level, koaid, instrument, service, utdatetime, status, status_code, \
             status_code_ipac, status_message, ofname, stage_file, process_dir, archive_dir, creation_time, process_start_time, \
             process_end_time, xfr_start_time, xfr_end_time, ipac_notify_time, ingest_start_time, ingest_copy_start_time, \
             ingest_copy_end_time, ingest_end_time, ipac_response_time, stage_time, filesize_mb, archsize_mb, koaimtyp, semid, \
             propint, source_deleted, md5, acknowledged, attempts, next_attempt_time, lease_owner, lease_expiry, reprocess, \
             transfer, last_mod, exptime, timings, history_time) \
             SELECT id, level, koaid, instrument, service, utdatetime, status, status_code, status_code_ipac, status_message, \
             ofname, stage_file, process_dir, archive_dir, creation_time, process_start_time, process_end_time, xfr_start_time, \
             xfr_end_time, ipac_notify_time, ingest_start_time, ingest_copy_start_time, ingest_copy_end_time, ingest_end_time, \
             ipac_response_time, stage_time, filesize_mb, archsize_mb, koaimtyp, semid, propint, source_deleted, md5, \
             acknowledged, attempts, next_attempt_time, lease_owner, lease_expiry, reprocess, transfer, last_mod, exptime, timings, ? \
             FROM koa_status WHERE id = ?",
            now(),
            id
        )?;
        execute!(
            self,
            "UPDATE koa_status SET status_code = NULL, status_code_ipac = NULL, status_message = NULL, process_dir = NULL, \
             archive_dir = NULL, process_start_time = NULL, process_end_time = NULL, xfr_start_time = NULL, \
             xfr_end_time = NULL, ipac_notify_time = NULL, ipac_response_time = NULL, stage_time = NULL, filesize_mb = NULL, \
             archsize_mb = NULL, koaimtyp = NULL, semid = NULL, exptime = NULL, timings = NULL, acknowledged = 0, creation_time = ?, reprocess = 1, last_step = NULL \
             WHERE id = ?",
            now(),
            id
        )?;
        Ok(())
    }

    /// Record identity: KOAID, UT date-time and content MD5. Fails with a
    /// unique violation when another row holds the KOAID.
    /// KOAID and UT of a job, and the input's MD5 when it was computed
    /// (an earlier MD5 is kept otherwise).
    /// The UT date-time goes in as a timestamp (`YYYY-MM-DD HH:MM:SS`; NULL
    /// when it is not one), so it lands in the reference's DATETIME column
    /// and in koa-dep's text column alike.
    pub async fn set_identity(&self, id: i64, koaid: &str, utdatetime: &str, md5: Option<&str>) -> DbResult<()> {
        let ut = NaiveDateTime::parse_from_str(utdatetime.trim(), "%Y-%m-%d %H:%M:%S").ok();
        execute!(
            self,
            "UPDATE koa_status SET koaid = ?, utdatetime = ?, md5 = COALESCE(?, md5) WHERE id = ?",
            koaid,
            ut,
            md5,
            id
        )?;
        Ok(())
    }

    /// Release the KOAID of a failed row (ERROR or INVALID) for a job with
    /// the same content, which takes it over: one exposure never holds two
    /// KOAIDs. The row becomes INVALID DUPLICATE_FILE (its file is archived
    /// by the other job, so a re-run of ERROR rows leaves it alone) and its
    /// message says where its KOAID went. Returns whether the row still held it.
    pub async fn release_koaid(&self, from: i64, koaid: &str, to: i64) -> DbResult<bool> {
        let note = format!("KOAID {koaid} taken over by job {to} (same content)");
        let n = execute!(
            self,
            "UPDATE koa_status SET koaid = NULL, status = 'INVALID', status_code = 'DUPLICATE_FILE', status_message = ? \
             WHERE id = ? AND koaid = ? AND NOT (COALESCE(status, '') IN ('COMPLETE', 'TRANSFERRED', 'TRANSFERRING', 'WARNING') \
             OR (status IN ('PROCESSING', 'QUEUED') AND lease_owner IS NOT NULL))",
            note,
            from,
            koaid
        )?;
        Ok(n == 1)
    }

    /// Start a transfer: `xfr_start_time` set and status TRANSFERRING, only
    /// when no transfer of this row has started (one statement, so two
    /// workers cannot both start it). Returns whether it started.
    pub async fn transfer_started(&self, id: i64) -> DbResult<bool> {
        let n = execute!(
            self,
            "UPDATE koa_status SET xfr_start_time = ?, xfr_end_time = NULL, status = 'TRANSFERRING' WHERE id = ? AND xfr_start_time IS NULL",
            now(),
            id
        )?;
        Ok(n == 1)
    }

    /// A failed transfer: `xfr_start_time` cleared so that a retry can start again.
    pub async fn transfer_failed(&self, id: i64) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET xfr_start_time = NULL WHERE id = ?", id)?;
        Ok(())
    }

    /// The products are at `archive_dir`: status TRANSFERRED (still under
    /// the job's lease until it finishes).
    pub async fn transfer_done(&self, id: i64, archive_dir: &str) -> DbResult<()> {
        execute!(
            self,
            "UPDATE koa_status SET xfr_end_time = ?, status = 'TRANSFERRED', archive_dir = ?, last_step = 'transferred' WHERE id = ?",
            now(),
            archive_dir,
            id
        )?;
        Ok(())
    }

    /// The ingest API was called.
    pub async fn ipac_notified(&self, id: i64) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET ipac_notify_time = ?, ipac_response_time = NULL, status_code_ipac = NULL WHERE id = ?", now(), id)?;
        Ok(())
    }

    /// The ingest API refused the call (its code in `status_code_ipac`),
    /// unless IPAC's callback already answered for the row.
    /// (`ipac_response_time` is the callback's: [`Db::record_ipac`].)
    pub async fn ipac_refused(&self, id: i64, code: &str) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET status_code_ipac = ? WHERE id = ? AND ipac_response_time IS NULL", code, id)?;
        Ok(())
    }

    /// Delete a job row (only the temporary row of a dry run).
    pub async fn delete_job(&self, id: i64) -> DbResult<()> {
        execute!(self, "DELETE FROM koa_status WHERE id = ?", id)?;
        Ok(())
    }

    /// Record the content MD5 of a job's input.
    pub async fn set_md5(&self, id: i64, md5: &str) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET md5 = ? WHERE id = ?", md5, id)?;
        Ok(())
    }

    /// Record the end of a run.
    pub async fn finish(&self, id: i64, o: &Outcome) -> DbResult<()> {
        execute!(
            self,
            // IPAC's callback may answer while the job still finishes: its
            // COMPLETE (or ERROR) stands (reference defect 38)
            "UPDATE koa_status SET status = CASE WHEN ipac_response_time IS NOT NULL AND status IN ('COMPLETE', 'ERROR') \
             THEN status ELSE COALESCE(?, status) END, status_code = ?, status_message = ?, \
             process_dir = COALESCE(?, process_dir), filesize_mb = COALESCE(?, filesize_mb), \
             archsize_mb = COALESCE(?, archsize_mb), koaimtyp = COALESCE(?, koaimtyp), semid = COALESCE(?, semid), \
             propint = COALESCE(?, propint), exptime = COALESCE(?, exptime), timings = COALESCE(?, timings), \
             process_end_time = ?, lease_owner = NULL, lease_expiry = NULL WHERE id = ?",
            o.status.map(Status::as_str),
            o.status_code.as_deref(),
            o.status_message.as_deref(),
            o.process_dir.as_deref(),
            o.filesize_mb,
            o.archsize_mb,
            o.koaimtyp.as_deref(),
            o.semid.as_deref(),
            o.propint,
            o.exptime,
            o.timings.as_deref(),
            now(),
            id
        )?;
        Ok(())
    }

    /// Record the raw stage copy of a job's input.
    pub async fn set_stage_file(&self, id: i64, stage_file: &str) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET stage_file = ?, stage_time = ? WHERE id = ?", stage_file, now(), id)?;
        Ok(())
    }

    /// Whether an e-mail for (instrument, code) was sent since `since`.
    pub async fn notified_since(&self, instrument: &str, code: &str, since: NaiveDateTime) -> DbResult<bool> {
        let n = scalar!(
            self,
            i64,
            fetch_one,
            "SELECT COUNT(*) FROM dep_error_notify WHERE instr = ? AND status_code = ? AND email_time >= ?",
            instrument,
            code,
            since
        )?;
        Ok(n > 0)
    }

    /// Record a sent e-mail.
    pub async fn record_notification(&self, instrument: &str, code: &str, recipients: &str) -> DbResult<()> {
        execute!(
            self,
            "INSERT INTO dep_error_notify (email_time, instr, status_code, recipients) VALUES (?, ?, ?, ?)",
            now(),
            instrument,
            code,
            recipients
        )?;
        Ok(())
    }

    /// Write any status text (to test the CHECK constraint).
    #[doc(hidden)]
    pub async fn set_status_text_for_test(&self, id: i64, status: &str) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET status = ? WHERE id = ?", status, id)?;
        Ok(())
    }

    /// Give a row a service and creation time (to test the backfill window).
    #[doc(hidden)]
    pub async fn set_service_for_test(&self, id: i64, service: &str, created: NaiveDateTime) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET service = ?, creation_time = ? WHERE id = ?", service, created, id)?;
        Ok(())
    }

    /// Set the status only.
    pub async fn set_status(&self, id: i64, status: Status) -> DbResult<()> {
        execute!(self, "UPDATE koa_status SET status = ? WHERE id = ?", status.as_str(), id)?;
        Ok(())
    }

    /// Store (or replace) the headers JSON of a KOAID.
    pub async fn upsert_header(&self, koaid: &str, header: &serde_json::Value) -> DbResult<()> {
        let json = sqlx::types::Json(header);
        match self.kind() {
            Kind::MySql => execute!(
                self,
                "INSERT INTO headers (koaid, header) VALUES (?, ?) ON DUPLICATE KEY UPDATE header = VALUES(header)",
                koaid,
                &json
            )?,
            _ => execute!(
                self,
                "INSERT INTO headers (koaid, header) VALUES (?, ?) ON CONFLICT (koaid) DO UPDATE SET header = excluded.header",
                koaid,
                &json
            )?,
        };
        Ok(())
    }

    pub async fn header(&self, koaid: &str) -> DbResult<Option<serde_json::Value>> {
        let v = scalar!(self, sqlx::types::Json<serde_json::Value>, fetch_optional, "SELECT header FROM headers WHERE koaid = ?", koaid)?;
        Ok(v.map(|j| j.0))
    }

    /// History rows of a job, oldest first.
    pub async fn history(&self, id: i64) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_all,
            "SELECT id, COALESCE(level, 0) AS level, koaid, instrument, service, CAST(utdatetime AS CHAR) AS utdatetime, \
             COALESCE(status, '') AS status, status_code, status_message, COALESCE(ofname, '') AS ofname, stage_file, process_dir, creation_time, process_start_time, process_end_time, xfr_start_time, xfr_end_time, filesize_mb, \
             archsize_mb, koaimtyp, semid, propint, md5, acknowledged, attempts, reprocess, transfer, lease_owner, lease_expiry, \
             archive_dir, status_code_ipac, ipac_notify_time, ipac_response_time, exptime, timings, last_step \
             FROM koa_status_history WHERE id = ? ORDER BY history_id",
            id
        )?)
    }

    /// Rows matching a selection, ordered by id.
    pub async fn select(&self, f: &Selection) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_all,
            const_format_row!(
                "WHERE level = ? AND (? IS NULL OR instrument = ?) AND (? IS NULL OR CAST(utdatetime AS CHAR) >= ?) \
                 AND (? IS NULL OR CAST(utdatetime AS CHAR) <= ?) AND (? IS NULL OR status = ?) AND (? IS NULL OR status_code = ?) \
                 AND (? IS NULL OR ofname LIKE ? ESCAPE '!') ORDER BY id"
            ),
            f.level,
            f.instrument.as_deref(),
            f.instrument.as_deref(),
            f.start.as_deref(),
            f.start.as_deref(),
            f.end.as_deref(),
            f.end.as_deref(),
            f.status.as_deref(),
            f.status.as_deref(),
            f.status_code.as_deref(),
            f.status_code.as_deref(),
            f.ofname_like.as_deref(),
            f.ofname_like.as_deref()
        )?)
    }
}

impl Selection {
    /// The pattern of original paths containing `text` literally (`%` and
    /// `_` in it match themselves).
    pub fn ofname_contains(text: &str) -> String {
        format!("%{}%", like_literal(text))
    }
}

/// Filters of the CLI's re-run-by-query mode.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub level: i64,
    pub instrument: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub status: Option<String>,
    pub status_code: Option<String>,
    /// A `LIKE … ESCAPE '!'` pattern (see [`Selection::ofname_contains`]).
    pub ofname_like: Option<String>,
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_for_postgres() {
        assert_eq!(pg("SELECT ? , '?' , ?"), "SELECT $1 , '?' , $2");
    }
}

pub mod ingest;
pub mod queue;
pub mod reports;
pub mod schema;
pub mod sources;
