//! The ingest callback's query: a pure function from the query's pairs to a
//! typed [`IngestRequest`] (the call mode with its parsed values) or to
//! every problem found, in order ([`ParseErrors`]). It owns the parameter
//! grammar (spec `ingest-callback.md` §2.2–§2.4). It does no I/O: it does not
//! touch the database, the file system or HTTP types.
//!
//! The reference's behaviour is kept where it is sound, and its defects
//! (spec §7.3) are fixed:
//! * Keys lose all whitespace and are lower-cased, and the value is stored
//!   under that normalised key (bug 4). An empty key, an unknown key and a
//!   repeated key are errors (bug 3). Unknown keys are never echoed, so they
//!   cannot overwrite reply fields such as `apiStatus` or `timestamp` (bug 5).
//! * A value that is empty or only whitespace counts as absent. If the chosen
//!   mode requires that key, the error is `<key> is blank` in request order,
//!   and the key does not also count toward `required params not included`.
//! * Booleans are normalised to `true`/`false` (bug 2). The KOAID, `utdate` and
//!   metrics times have strict grammars with ASCII digits and zero padding
//!   (bugs 11, 30, 31). Metrics errors name what is wrong (bug 37).
//! * The call mode is chosen from the normalised values and never panics
//!   (bugs 6, 7). Level-2 IPAC nights require `utdate`.
//! * `message` stands in for `ingest_error` when IPAC reports ERROR or WARNING
//!   without it (bug 9). WARNING needs a message as ERROR does (bug 8).
//! * Free texts are at most [`MAX_TEXT`] characters. `datadir` must be an
//!   absolute path with no `..` component (the caller still resolves it and
//!   checks its roots). A value containing `Invalid param` is an ordinary
//!   value (bug 32).
//!
//! Error texts keep the reference's wording where it is sensible. Values
//! quoted in them are cut to 64 characters, with control characters shown
//! as `?`.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value};

/// The most characters a free-text value (`ingest_error`, `message`,
/// `datadir`, `start`, `dev`) may have.
pub const MAX_TEXT: usize = 1024;
/// The most pairs a query may have. A longer query gives one error, and
/// nothing in it is parsed.
pub const MAX_PARAMS: usize = 64;
/// The `status` values IPAC may send, after normalisation (`DONE` means `COMPLETE`).
pub const STATUS_SET: &[&str] = &["COMPLETE", "DONE", "ERROR", "WARNING"];
/// The boolean spellings after normalisation: the first three are true, the others false.
pub const VALID_BOOL: &[&str] = &["TRUE", "1", "YES", "FALSE", "0", "NO"];
/// The `ingesttype` values after normalisation.
pub const INGEST_TYPES: &[&str] = &["lev0", "lev1", "lev2"];
/// The `ingest_*` keys of the `metrics` object, in the reference's order.
pub const METRICS_PARAMS: &[&str] = &["ingest_start_time", "ingest_copy_start_time", "ingest_copy_end_time", "ingest_end_time"];
/// The slit-mask (PypeIt) instruments. Their level-2 "night finished" DRP
/// request names a `datadir`. Every other instrument names a `utdate`.
pub const SLITMASK_INSTRUMENTS: &[&str] = &["DEIMOS", "ESI", "LRIS", "MOSFIRE", "NIRES"];

/// KOA's instruments and their KOAID prefixes, in the reference's
/// `INST_MAPPING` order (spec §7.1), plus SCALES.
const KOA_INSTRUMENTS: &[(&str, &[&str])] = &[
    ("DEIMOS", &["DE", "DF"]),
    ("ESI", &["ES"]),
    ("GUIDER", &["GR"]),
    ("HIRES", &["HI"]),
    ("KCWI", &["KB", "KF", "KR", "KS"]),
    ("KPF", &["KP"]),
    ("LRIS", &["LB", "LR"]),
    ("MOSFIRE", &["MF"]),
    ("OSIRIS", &["OI", "OS"]),
    ("NIRC2", &["N2"]),
    ("NIRES", &["NI", "NR"]),
    ("NIRSPEC", &["NC", "NS"]),
    ("SCALES", &["SS", "SI", "SD"]),
];

/// The echo of the parsed parameters.
type Echo = Map<String, Value>;

/// How many characters of a value an error text quotes.
const SHOWN: usize = 64;

/// The data level that an ingest concerns (`ingesttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestType {
    Lev0,
    Lev1,
    Lev2,
}

impl IngestType {
    /// The level number, as in `koa_status.level`.
    pub fn level(self) -> i64 {
        match self {
            IngestType::Lev0 => 0,
            IngestType::Lev1 => 1,
            IngestType::Lev2 => 2,
        }
    }

    /// The parameter's spelling: `lev0`, `lev1` or `lev2`.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestType::Lev0 => "lev0",
            IngestType::Lev1 => "lev1",
            IngestType::Lev2 => "lev2",
        }
    }

    /// Parse an `ingesttype` value: whitespace removed, lower-cased.
    pub fn parse(value: &str) -> Result<IngestType, String> {
        match squeeze(value).to_lowercase().as_str() {
            "lev0" => Ok(IngestType::Lev0),
            "lev1" => Ok(IngestType::Lev1),
            "lev2" => Ok(IngestType::Lev2),
            other => Err(not_in_set(other, INGEST_TYPES.iter().copied())),
        }
    }
}

/// The outcome that IPAC reports (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpacStatus {
    Complete,
    Error,
    Warning,
}

impl IpacStatus {
    /// The status as stored in `koa_status.status`: `COMPLETE`, `ERROR` or `WARNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpacStatus::Complete => "COMPLETE",
            IpacStatus::Error => "ERROR",
            IpacStatus::Warning => "WARNING",
        }
    }

    /// Parse a `status` value: whitespace removed, upper-cased. `DONE` means `COMPLETE`.
    pub fn parse(value: &str) -> Result<IpacStatus, String> {
        match squeeze(value).to_uppercase().as_str() {
            "COMPLETE" | "DONE" => Ok(IpacStatus::Complete),
            "ERROR" => Ok(IpacStatus::Error),
            "WARNING" => Ok(IpacStatus::Warning),
            other => Err(not_in_set(other, STATUS_SET.iter().copied())),
        }
    }
}

/// A KOAID: `<PREFIX>.<YYYYMMDD>.<SSSSS>.<FF>` with an optional `_suffix`
/// of 1 to 32 letters or digits (NIRC2 `_unp`, SCALES `_qramp`). Its
/// [`Display`](fmt::Display) form is the KOAID without `.fits`, such as
/// `NI.20240115.45123.45` or `N2.20240115.45123.45_unp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Koaid {
    pub prefix: String,
    pub date: NaiveDate,
    /// Seconds since UT midnight, below 86400.
    pub seconds: u32,
    /// Hundredths of a second, 0 to 99.
    pub fraction: u8,
    /// The text after `_`, without the `_`.
    pub suffix: Option<String>,
}

impl Koaid {
    /// Parse the callback's KOAID, which ends in `.fits` as the reference
    /// requires (`HI.20240115.45123.45.fits`). Only that final `.fits` is
    /// removed. The checks run in the reference's order, and the first
    /// failure is the error. The suffix check comes second, where the
    /// reference cuts the suffix off without checking it. The prefix must be
    /// one of `instruments`'s (case-sensitive).
    pub fn parse_fits(value: &str, instruments: &Instruments) -> Result<Koaid, String> {
        let parts: Vec<&str> = value.split('.').collect();
        let &[prefix, date, seconds, fraction, ext] = parts.as_slice() else {
            return Err(format!("KOAID: {} must be five parts (.) separated, ending with file type (ie .fits)", shown(value)));
        };
        let (fraction, suffix) = match fraction.split_once('_') {
            Some((f, s)) => (f, Some(s)),
            None => (fraction, None),
        };
        if let Some(s) = suffix
            && !valid_suffix(s)
        {
            return Err(format!("KOAID suffix {} must be 1 to 32 letters or digits", shown(s)));
        }
        if !instruments.prefixes().any(|p| p == prefix) {
            return Err(not_in_set(prefix, instruments.prefixes()));
        }
        let date = strict_date(date).ok_or_else(|| bad_date(date))?;
        if seconds.chars().count() != 5 {
            return Err("check KOAID seconds length".to_string());
        }
        let seconds = digits(seconds, 5).ok_or("check if KOAID seconds is positive integer")?;
        if fraction.chars().count() != 2 {
            return Err("check KOAID decimal length".to_string());
        }
        let fraction = digits(fraction, 2).ok_or("check if KOAID decimal is positive integer")?;
        if seconds >= 86_400 {
            return Err("KOAID seconds exceed day".to_string());
        }
        if ext != "fits" {
            return Err("check KOAID file type, must end with .fits".to_string());
        }
        let fraction = u8::try_from(fraction).map_err(|_| "check if KOAID decimal is positive integer")?;
        Ok(Koaid { prefix: prefix.to_string(), date, seconds, fraction, suffix: suffix.map(str::to_string) })
    }

    /// The file name: the KOAID with `.fits`.
    pub fn fits_name(&self) -> String {
        format!("{self}.fits")
    }
}

impl fmt::Display for Koaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.date;
        write!(f, "{}.{:04}{:02}{:02}.{:05}.{:02}", self.prefix, d.year(), d.month(), d.day(), self.seconds, self.fraction)?;
        match &self.suffix {
            Some(s) => write!(f, "_{s}"),
            None => Ok(()),
        }
    }
}

/// IPAC's four ingest times (the `metrics` object), as IPAC sends them:
/// UTC in practice, `YYYY-MM-DD HH:MM:SS`. IPAC sends the copy times as ""
/// when there was no copy. They are `None` then, and when the key is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub ingest_start_time: NaiveDateTime,
    pub ingest_copy_start_time: Option<NaiveDateTime>,
    pub ingest_copy_end_time: Option<NaiveDateTime>,
    pub ingest_end_time: NaiveDateTime,
}

/// What the call asks for (spec §2.3: the reference's modes A0–A2, B1, B2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// IPAC: the ingest of one KOAID at this level ended (A0, A1, and A2 with a koaid)
    IpacOne { koaid: Koaid },
    /// IPAC: KCWI-style level-2 night (A2 with utdate)
    IpacNight { utdate: NaiveDate },
    /// DRP: queue one product folder (B1, and B2 with koaid+datadir)
    DrpOne { koaid: Koaid, datadir: String },
    /// DRP: a level-2 night is finished (B2 with utdate, or with datadir only for the slit-mask instruments)
    ///
    /// A slit-mask instrument ([`SLITMASK_INSTRUMENTS`]) requires `datadir`, and any other
    /// instrument requires `utdate`. The other of the two is passed on when given.
    DrpNight { utdate: Option<NaiveDate>, datadir: Option<String> },
}

/// A valid callback, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRequest {
    /// The instrument, upper case, one of [`Instruments`].
    pub instrument: String,
    pub ingest_type: IngestType,
    pub mode: Mode,
    /// IPAC's outcome: `Some` for the IPAC modes, `None` for the DRP modes.
    pub status: Option<IpacStatus>,
    /// IPAC's ingest times: `Some` for the IPAC modes, `None` for the DRP modes.
    pub metrics: Option<Metrics>,
    /// IPAC's text, for the IPAC modes only. It comes from `ingest_error`.
    /// When that is absent and the status is ERROR or WARNING, it comes from
    /// `message` (the fix of bug 9). It is never longer than [`MAX_TEXT`].
    pub ingest_error: Option<String>,
    /// `reingest`, false when absent.
    pub reingest: bool,
    /// `testonly`, false when absent. The caller honours it: no writes, no mail.
    pub testonly: bool,
    /// The parameters as parsed, for the reply: normalised keys → normalised values, metrics as an object, koaid without .fits
    pub echo: Map<String, Value>,
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseErrors {
    /// Every problem found, in order. Per-parameter problems come in request
    /// order, then the checks across parameters. Never empty.
    pub errors: Vec<String>,
    /// The parameters as far as they parsed, like [`IngestRequest::echo`]:
    /// `null` where a value failed or a required value was blank.
    pub echo: Map<String, Value>,
    /// The normalised instrument when it was valid (for the admin mail's subject).
    pub instrument: Option<String>,
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.errors.join("; "))
    }
}

impl std::error::Error for ParseErrors {}

/// The instruments that the callback accepts, each with its KOAID prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruments {
    table: Vec<(String, Vec<String>)>,
}

impl Instruments {
    /// KOA's instruments and prefixes: the spec's INST_MAPPING (§7.1) plus SCALES → SS, SI, SD.
    pub fn koa() -> Instruments {
        let row = |name: &str, prefixes: &[&str]| (name.to_string(), prefixes.iter().map(|p| p.to_string()).collect::<Vec<String>>());
        Instruments::new(KOA_INSTRUMENTS.iter().map(|&(name, prefixes)| row(name, prefixes)).collect())
    }

    /// A table of upper-case instrument names, each with its KOAID prefixes,
    /// in the order that error texts list them. The first instrument listing
    /// a prefix owns it.
    pub fn new(table: Vec<(String, Vec<String>)>) -> Instruments {
        Instruments { table }
    }

    /// The instrument whose KOAIDs start with `prefix` (case-sensitive).
    pub fn instrument_of_prefix(&self, prefix: &str) -> Option<&str> {
        self.table.iter().find(|(_, prefixes)| prefixes.iter().any(|p| p == prefix)).map(|(name, _)| name.as_str())
    }

    /// Whether `instrument` (already normalised) is one of the table's.
    pub fn contains(&self, instrument: &str) -> bool {
        self.table.iter().any(|(name, _)| name == instrument)
    }

    /// The instrument names, in table order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(|(name, _)| name.as_str())
    }

    /// Every KOAID prefix, in table order.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.table.iter().flat_map(|(_, prefixes)| prefixes.iter().map(String::as_str))
    }

    /// Parse an `instrument` value: whitespace removed, upper-cased, one of
    /// the table's. Otherwise the error is `<value> not found in set [...]`.
    pub fn normalise(&self, value: &str) -> Result<String, String> {
        let name = squeeze(value).to_uppercase();
        if self.contains(&name) { Ok(name) } else { Err(not_in_set(&name, self.names())) }
    }
}

/// Parse a query (pairs in request order, already percent-decoded).
///
/// The call mode is chosen from the normalised `ingesttype`, and from
/// whether `status` and `koaid` have non-blank values:
///
/// | ingesttype | status | koaid | mode | required |
/// |---|---|---|---|---|
/// | lev0 | any | any | [`Mode::IpacOne`] | instrument, ingesttype, koaid, status, metrics |
/// | lev1 | yes | any | [`Mode::IpacOne`] | same |
/// | lev1 | no | any | [`Mode::DrpOne`] | instrument, ingesttype, koaid, datadir |
/// | lev2 | yes | yes | [`Mode::IpacOne`] | instrument, ingesttype, koaid, status, metrics |
/// | lev2 | yes | no | [`Mode::IpacNight`] | instrument, ingesttype, status, metrics, utdate |
/// | lev2 | no | yes | [`Mode::DrpOne`] | instrument, ingesttype, koaid, datadir |
/// | lev2 | no | no | [`Mode::DrpNight`] | instrument, ingesttype, and datadir (slit-mask) or utdate (others) |
/// | missing or invalid | | | none | instrument, ingesttype |
///
/// Keys that do not belong to the mode are errors. The IPAC modes take no
/// `datadir`, and the DRP modes take no `metrics` or `ingest_error`. Only the
/// night modes take `utdate`. When the instrument is unknown, a DRP night
/// needs `utdate` or `datadir`.
///
/// After the per-parameter errors, the cross-checks follow in this order:
/// ERROR/WARNING without `ingest_error` or `message` gives
/// `status==ERROR should include a message`. A missing required key gives
/// `required params not included` (once). Then come keys outside the mode.
/// Last, a KOAID whose prefix belongs to another instrument (or whose
/// instrument is missing or invalid) gives `check that koaid <k> matches inst <I>`.
pub fn parse(query: &[(String, String)], instruments: &Instruments) -> Result<IngestRequest, ParseErrors> {
    if query.len() > MAX_PARAMS {
        let errors = vec![format!("too many params ({}; at most {MAX_PARAMS})", query.len())];
        return Err(ParseErrors { errors, echo: Map::new(), instrument: None });
    }
    let entries = entries(query);
    let plan = Plan::of(&entries, instruments);
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    let mut echo = Map::new();
    for entry in &entries {
        match entry {
            Entry::Problem(text) => errors.push(text.clone()),
            Entry::Param(key, raw) => parsed.take(*key, raw, &plan, instruments, &mut errors, &mut echo),
        }
    }
    errors.extend(cross_checks(&parsed, &plan, instruments));
    let instrument = parsed.instrument.clone();
    if !errors.is_empty() {
        return Err(ParseErrors { errors, echo, instrument });
    }
    let missing = || vec!["required params not included".to_string()];
    build(parsed, plan.shape, echo).map_err(|echo| ParseErrors { errors: missing(), echo, instrument })
}

/// A parameter the callback knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Instrument,
    IngestType,
    Koaid,
    Status,
    Metrics,
    IngestError,
    Message,
    Reingest,
    Testonly,
    Utdate,
    Datadir,
    Start,
    Dev,
}

impl Key {
    const ALL: [Key; 13] = [
        Key::Instrument,
        Key::IngestType,
        Key::Koaid,
        Key::Status,
        Key::Metrics,
        Key::IngestError,
        Key::Message,
        Key::Reingest,
        Key::Testonly,
        Key::Utdate,
        Key::Datadir,
        Key::Start,
        Key::Dev,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::Instrument => "instrument",
            Key::IngestType => "ingesttype",
            Key::Koaid => "koaid",
            Key::Status => "status",
            Key::Metrics => "metrics",
            Key::IngestError => "ingest_error",
            Key::Message => "message",
            Key::Reingest => "reingest",
            Key::Testonly => "testonly",
            Key::Utdate => "utdate",
            Key::Datadir => "datadir",
            Key::Start => "start",
            Key::Dev => "dev",
        }
    }

    /// The key of a normalised name.
    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One pair of the query: a known key's first value, or a problem with the pair itself.
enum Entry<'a> {
    Param(Key, &'a str),
    Problem(String),
}

/// The query's pairs in request order. Empty, unknown and repeated keys
/// become problems. A repeated key is reported once, at its second
/// occurrence, and its first value is the one that gets parsed.
fn entries(query: &[(String, String)]) -> Vec<Entry<'_>> {
    let mut seen: Vec<Key> = Vec::new();
    let mut repeated: Vec<Key> = Vec::new();
    let mut out = Vec::new();
    for (raw_key, value) in query {
        let name = squeeze(raw_key).to_lowercase();
        let entry = if name.is_empty() {
            Entry::Problem(format!("blank param name has value {}", shown(value)))
        } else if let Some(key) = Key::from_name(&name) {
            if !seen.contains(&key) {
                seen.push(key);
                Entry::Param(key, value.as_str())
            } else if !repeated.contains(&key) {
                repeated.push(key);
                Entry::Problem(format!("param {name} given more than once"))
            } else {
                continue;
            }
        } else {
            Entry::Problem(format!("Invalid param {} has value {}", shown(&name), shown(value)))
        };
        out.push(entry);
    }
    out
}

/// The call mode, before the values are known to be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `ingesttype` missing or invalid
    Unknown,
    IpacOne,
    IpacNight,
    DrpOne,
    DrpNight,
}

impl Shape {
    fn of(ingest_type: Option<IngestType>, status: bool, koaid: bool) -> Shape {
        match (ingest_type, status, koaid) {
            (None, _, _) => Shape::Unknown,
            (Some(IngestType::Lev0), _, _) | (Some(IngestType::Lev1), true, _) | (Some(IngestType::Lev2), true, true) => Shape::IpacOne,
            (Some(IngestType::Lev1), false, _) | (Some(IngestType::Lev2), false, true) => Shape::DrpOne,
            (Some(IngestType::Lev2), true, false) => Shape::IpacNight,
            (Some(IngestType::Lev2), false, false) => Shape::DrpNight,
        }
    }

    fn is_ipac(self) -> bool {
        matches!(self, Shape::IpacOne | Shape::IpacNight)
    }

    /// The keys required in every case of this shape.
    fn required(self) -> &'static [Key] {
        match self {
            Shape::Unknown | Shape::DrpNight => &[Key::Instrument, Key::IngestType],
            Shape::IpacOne => &[Key::Instrument, Key::IngestType, Key::Koaid, Key::Status, Key::Metrics],
            Shape::IpacNight => &[Key::Instrument, Key::IngestType, Key::Status, Key::Metrics, Key::Utdate],
            Shape::DrpOne => &[Key::Instrument, Key::IngestType, Key::Koaid, Key::Datadir],
        }
    }

    /// The keys that this shape refuses, with the error text.
    fn refused(self) -> &'static [(Key, &'static str)] {
        const IPAC_DATADIR: (Key, &str) = (Key::Datadir, "datadir not allowed with status (an IPAC callback)");
        const DRP_METRICS: (Key, &str) = (Key::Metrics, "metrics not allowed without status (a DRP request)");
        const DRP_ERROR: (Key, &str) = (Key::IngestError, "ingest_error not allowed without status (a DRP request)");
        const ONE_UTDATE: (Key, &str) = (Key::Utdate, "utdate not allowed with koaid (it names a level-2 night)");
        match self {
            Shape::Unknown => &[],
            Shape::IpacOne => &[IPAC_DATADIR, ONE_UTDATE],
            Shape::IpacNight => &[IPAC_DATADIR],
            Shape::DrpOne => &[DRP_METRICS, DRP_ERROR, ONE_UTDATE],
            Shape::DrpNight => &[DRP_METRICS, DRP_ERROR],
        }
    }
}

/// The mode and its required keys, chosen from the normalised values
/// before the parameters are parsed in request order.
struct Plan {
    shape: Shape,
    required: Vec<Key>,
    /// A DRP night for an instrument that is missing or invalid: `utdate` or `datadir` will do.
    night_either: bool,
}

impl Plan {
    fn of(entries: &[Entry<'_>], instruments: &Instruments) -> Plan {
        let first = |key: Key| {
            entries.iter().find_map(|e| match e {
                Entry::Param(k, v) if *k == key && !is_blank(v) => Some(*v),
                _ => None,
            })
        };
        let ingest_type = first(Key::IngestType).and_then(|v| IngestType::parse(v).ok());
        let shape = Shape::of(ingest_type, first(Key::Status).is_some(), first(Key::Koaid).is_some());
        let mut required = shape.required().to_vec();
        let mut night_either = false;
        if shape == Shape::DrpNight {
            match first(Key::Instrument).and_then(|v| instruments.normalise(v).ok()) {
                Some(name) if SLITMASK_INSTRUMENTS.iter().any(|s| *s == name) => required.push(Key::Datadir),
                Some(_) => required.push(Key::Utdate),
                None => night_either = true,
            }
        }
        Plan { shape, required, night_either }
    }

    /// Whether a required key was neither given nor reported blank.
    fn missing(&self, parsed: &Parsed) -> bool {
        let has = |k: Key| parsed.given.contains(&k) || parsed.blank.contains(&k);
        self.required.iter().any(|k| !has(*k)) || (self.night_either && !has(Key::Utdate) && !has(Key::Datadir))
    }
}

/// The values parsed so far.
#[derive(Default)]
struct Parsed {
    instrument: Option<String>,
    ingest_type: Option<IngestType>,
    koaid: Option<Koaid>,
    status: Option<IpacStatus>,
    metrics: Option<Metrics>,
    ingest_error: Option<String>,
    message: Option<String>,
    reingest: bool,
    testonly: bool,
    utdate: Option<NaiveDate>,
    datadir: Option<String>,
    /// Keys with a non-blank value, valid or not.
    given: Vec<Key>,
    /// Required keys whose value was blank (already reported).
    blank: Vec<Key>,
}

impl Parsed {
    /// Take one parameter: report a blank required value, or parse the
    /// value and echo it (`null` when it fails).
    fn take(&mut self, key: Key, raw: &str, plan: &Plan, instruments: &Instruments, errors: &mut Vec<String>, echo: &mut Echo) {
        if is_blank(raw) {
            if plan.required.contains(&key) {
                errors.push(format!("{} is blank", key.name()));
                echo.insert(key.name().to_string(), Value::Null);
                self.blank.push(key);
            }
            return;
        }
        self.given.push(key);
        let value = self.apply(key, raw, instruments).unwrap_or_else(|e| {
            errors.extend(e);
            Value::Null
        });
        echo.insert(key.name().to_string(), value);
    }

    /// Parse a non-blank value into its field, returning the value to echo.
    fn apply(&mut self, key: Key, raw: &str, instruments: &Instruments) -> Result<Value, Vec<String>> {
        let one = |e: String| vec![e];
        match key {
            Key::Instrument => {
                let name = instruments.normalise(raw).map_err(one)?;
                self.instrument = Some(name.clone());
                Ok(Value::String(name))
            }
            Key::IngestType => {
                let t = IngestType::parse(raw).map_err(one)?;
                self.ingest_type = Some(t);
                Ok(t.as_str().into())
            }
            Key::Koaid => {
                let koaid = Koaid::parse_fits(raw, instruments).map_err(one)?;
                let text = Value::String(koaid.to_string());
                self.koaid = Some(koaid);
                Ok(text)
            }
            Key::Status => {
                let s = IpacStatus::parse(raw).map_err(one)?;
                self.status = Some(s);
                Ok(s.as_str().into())
            }
            Key::Metrics => {
                let (metrics, object) = parse_metrics(raw)?;
                self.metrics = Some(metrics);
                Ok(object)
            }
            Key::IngestError => {
                self.ingest_error = Some(free_text(key, raw).map_err(one)?);
                Ok(raw.into())
            }
            Key::Message => {
                self.message = Some(free_text(key, raw).map_err(one)?);
                Ok(raw.into())
            }
            Key::Reingest => {
                self.reingest = parse_bool(raw).map_err(one)?;
                Ok(bool_text(self.reingest).into())
            }
            Key::Testonly => {
                self.testonly = parse_bool(raw).map_err(one)?;
                Ok(bool_text(self.testonly).into())
            }
            Key::Utdate => {
                self.utdate = Some(strict_date(raw).ok_or_else(|| one(bad_date(raw)))?);
                Ok(raw.into())
            }
            Key::Datadir => {
                self.datadir = Some(parse_datadir(raw).map_err(one)?);
                Ok(raw.into())
            }
            Key::Start | Key::Dev => Ok(free_text(key, raw).map_err(one)?.into()),
        }
    }
}

/// The checks across parameters (see [`parse`]), in order.
fn cross_checks(parsed: &Parsed, plan: &Plan, instruments: &Instruments) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(status @ (IpacStatus::Error | IpacStatus::Warning)) = parsed.status
        && parsed.ingest_error.is_none()
        && parsed.message.is_none()
    {
        errors.push(format!("status=={} should include a message", status.as_str()));
    }
    if plan.missing(parsed) {
        errors.push("required params not included".to_string());
    }
    let refused = plan.shape.refused().iter().filter(|(key, _)| parsed.given.contains(key));
    errors.extend(refused.map(|(_, text)| text.to_string()));
    if let Some(koaid) = &parsed.koaid
        && let Some(owner) = instruments.instrument_of_prefix(&koaid.prefix)
        && parsed.instrument.as_deref() != Some(owner)
    {
        errors.push(format!("check that koaid {koaid} matches inst {owner}"));
    }
    errors
}

/// The request from values that passed every check. `Err` gives the echo
/// back when a value the mode needs is missing after all, which the checks
/// exclude.
fn build(p: Parsed, shape: Shape, echo: Echo) -> Result<IngestRequest, Echo> {
    let ipac = shape.is_ipac();
    let fallback = match p.status {
        Some(IpacStatus::Error | IpacStatus::Warning) => p.message,
        _ => None,
    };
    let ingest_error = if ipac { p.ingest_error.or(fallback) } else { None };
    let (status, metrics) = if ipac { (p.status, p.metrics) } else { (None, None) };
    let mode = match (shape, p.koaid, p.utdate, p.datadir) {
        (Shape::IpacOne, Some(koaid), _, _) => Some(Mode::IpacOne { koaid }),
        (Shape::IpacNight, _, Some(utdate), _) => Some(Mode::IpacNight { utdate }),
        (Shape::DrpOne, Some(koaid), _, Some(datadir)) => Some(Mode::DrpOne { koaid, datadir }),
        (Shape::DrpNight, _, utdate, datadir) if utdate.is_some() || datadir.is_some() => Some(Mode::DrpNight { utdate, datadir }),
        _ => None,
    };
    match (p.instrument, p.ingest_type, mode) {
        (Some(instrument), Some(ingest_type), Some(mode)) if !ipac || (status.is_some() && metrics.is_some()) => Ok(IngestRequest {
            instrument,
            ingest_type,
            mode,
            status,
            metrics,
            ingest_error,
            reingest: p.reingest,
            testonly: p.testonly,
            echo,
        }),
        _ => Err(echo),
    }
}

/// Parse `metrics`: a JSON object with the four `ingest_*` times. Every
/// problem with its keys is reported. Keys beyond the four are kept in the
/// echoed object and nowhere else.
fn parse_metrics(raw: &str) -> Result<(Metrics, Value), Vec<String>> {
    let value: Value = serde_json::from_str(raw).map_err(|e| vec![format!("Cannot parse metrics value: {e}")])?;
    let Value::Object(map) = &value else {
        return Err(vec![format!("metrics must be a JSON object, not {}", json_kind(&value))]);
    };
    let mut errors = Vec::new();
    let mut time = |key: &str, optional: bool| {
        metrics_time(map, key, optional).unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    let start = time("ingest_start_time", false);
    let copy_start = time("ingest_copy_start_time", true);
    let copy_end = time("ingest_copy_end_time", true);
    let end = time("ingest_end_time", false);
    match (start, end) {
        (Some(ingest_start_time), Some(ingest_end_time)) if errors.is_empty() => {
            let (ingest_copy_start_time, ingest_copy_end_time) = (copy_start, copy_end);
            Ok((Metrics { ingest_start_time, ingest_copy_start_time, ingest_copy_end_time, ingest_end_time }, value))
        }
        _ => Err(errors),
    }
}

/// One time of the metrics object. A copy time (`optional`) may be absent or "".
fn metrics_time(map: &Map<String, Value>, key: &str, optional: bool) -> Result<Option<NaiveDateTime>, String> {
    match map.get(key) {
        None if optional => Ok(None),
        None => Err(format!("Missing metrics data - {key}")),
        Some(Value::String(s)) if s.is_empty() && optional => Ok(None),
        Some(Value::String(s)) => strict_datetime(s)
            .map(Some)
            .ok_or_else(|| format!("Incorrect format for metrics key {key}: \"{}\" is not YYYY-MM-DD HH:MM:SS", shown(s))),
        Some(other) => Err(format!("Incorrect format for metrics key {key}: {} is not a string", json_kind(other))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A boolean: whitespace removed, upper-cased, `TRUE`/`1`/`YES` or `FALSE`/`0`/`NO`.
fn parse_bool(value: &str) -> Result<bool, String> {
    match squeeze(value).to_uppercase().as_str() {
        "TRUE" | "1" | "YES" => Ok(true),
        "FALSE" | "0" | "NO" => Ok(false),
        other => Err(not_in_set(other, VALID_BOOL.iter().copied())),
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "TRUE" } else { "FALSE" }
}

/// A free text of at most [`MAX_TEXT`] characters, kept as given.
fn free_text(key: Key, raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n > MAX_TEXT { Err(format!("{} is longer than {MAX_TEXT} characters ({n})", key.name())) } else { Ok(raw.to_string()) }
}

/// `datadir`: a free text that is an absolute path with no `..` component
/// and no control characters. It is not resolved here.
fn parse_datadir(raw: &str) -> Result<String, String> {
    let dir = free_text(Key::Datadir, raw)?;
    if dir.chars().any(char::is_control) {
        return Err(format!("datadir {} must not contain control characters", shown(&dir)));
    }
    if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
        return Err(format!("datadir {} must be an absolute path without '..'", shown(&dir)));
    }
    Ok(dir)
}

/// `YYYYMMDD`: 8 ASCII digits that form a calendar date.
fn strict_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.is_ascii() {
        return None;
    }
    let year = i32::try_from(digits(&s[..4], 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&s[4..6], 2)?, digits(&s[6..], 2)?)
}

/// `YYYY-MM-DD HH:MM:SS`, zero-padded, ASCII digits, a real date and time.
fn strict_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || !s.is_ascii() || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = strict_date(&format!("{}{}{}", &s[..4], &s[5..7], &s[8..10]))?;
    let time = NaiveTime::from_hms_opt(digits(&s[11..13], 2)?, digits(&s[14..16], 2)?, digits(&s[17..], 2)?)?;
    Some(NaiveDateTime::new(date, time))
}

/// A KOAID suffix (after `_`): 1 to 32 ASCII letters or digits.
fn valid_suffix(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The number that `s` spells when it is exactly `len` ASCII digits.
fn digits(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

fn bad_date(value: &str) -> String {
    format!("date {} not valid. Is the format %Y%m%d?", shown(value))
}

/// The reference's `<value> not found in set [<Python list repr>]`.
fn not_in_set<'a>(value: &str, set: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = set.into_iter().map(|s| format!("'{s}'")).collect();
    format!("{} not found in set [{}]", shown(value), items.join(", "))
}

/// The value without any whitespace.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// A value as quoted in an error text: cut to [`SHOWN`] characters,
/// control characters as `?`.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(SHOWN).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = concat!(
        r#"{"ingest_start_time":"2024-01-15 12:41:02","ingest_copy_start_time":"2024-01-15 12:41:03","#,
        r#""ingest_copy_end_time":"2024-01-15 12:41:09","ingest_end_time":"2024-01-15 12:41:15"}"#
    );
    const INST_SET_ERROR: &str = concat!(
        "not found in set ['DEIMOS', 'ESI', 'GUIDER', 'HIRES', 'KCWI', 'KPF', 'LRIS', 'MOSFIRE', ",
        "'OSIRIS', 'NIRC2', 'NIRES', 'NIRSPEC'"
    );

    type Query = Vec<(String, String)>;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Spec E1: a level-0 success.
    fn e1() -> Query {
        query(&[
            ("instrument", "HIRES"),
            ("ingesttype", "lev0"),
            ("koaid", "HI.20240115.45123.45.fits"),
            ("status", "COMPLETE"),
            ("metrics", METRICS),
        ])
    }

    /// `q` with `key` set to `value` (replaced in place, or added at the end).
    fn with(mut q: Query, key: &str, value: &str) -> Query {
        match q.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_string(),
            None => q.push((key.to_string(), value.to_string())),
        }
        q
    }

    fn without(mut q: Query, key: &str) -> Query {
        q.retain(|(k, _)| k != key);
        q
    }

    fn ok(q: &Query) -> IngestRequest {
        parse(q, &Instruments::koa()).unwrap_or_else(|e| panic!("refused {q:?}: {:?}", e.errors))
    }

    fn refused(q: &Query) -> ParseErrors {
        match parse(q, &Instruments::koa()) {
            Ok(r) => panic!("accepted {q:?}: {r:?}"),
            Err(e) => e,
        }
    }

    fn errs(q: &Query) -> Vec<String> {
        refused(q).errors
    }

    fn koaid(s: &str) -> Result<Koaid, String> {
        Koaid::parse_fits(s, &Instruments::koa())
    }

    fn time(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// Alternating case, with a different whitespace before each character.
    fn mangle(s: &str) -> String {
        let blanks = [" ", "\t", "\r\n", "\n"];
        let mut out: String = s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let c = if i % 2 == 0 { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
                format!("{}{c}", blanks[i % blanks.len()])
            })
            .collect();
        out.push_str(" \t");
        out
    }

    /// A small deterministic generator (64-bit LCG) for the random KOAIDs.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn e1_level0_success() {
        let r = ok(&e1());
        assert_eq!(r.instrument, "HIRES");
        assert_eq!(r.ingest_type, IngestType::Lev0);
        assert_eq!(r.ingest_type.level(), 0);
        let Mode::IpacOne { koaid } = &r.mode else { panic!("{:?}", r.mode) };
        assert_eq!(koaid.to_string(), "HI.20240115.45123.45");
        assert_eq!((koaid.seconds, koaid.fraction, koaid.suffix.as_deref()), (45123, 45, None));
        assert_eq!(koaid.date, NaiveDate::from_ymd_opt(2024, 1, 15).unwrap());
        assert_eq!(r.status, Some(IpacStatus::Complete));
        let m = r.metrics.unwrap();
        assert_eq!(m.ingest_start_time, time("2024-01-15 12:41:02"));
        assert_eq!(m.ingest_copy_start_time, Some(time("2024-01-15 12:41:03")));
        assert_eq!(m.ingest_copy_end_time, Some(time("2024-01-15 12:41:09")));
        assert_eq!(m.ingest_end_time, time("2024-01-15 12:41:15"));
        assert_eq!((r.ingest_error, r.reingest, r.testonly), (None, false, false));
        assert_eq!(r.echo["koaid"], "HI.20240115.45123.45");
        assert_eq!(r.echo["instrument"], "HIRES");
        assert_eq!(r.echo["ingesttype"], "lev0");
        assert_eq!(r.echo["status"], "COMPLETE");
        assert_eq!(r.echo["metrics"]["ingest_copy_end_time"], "2024-01-15 12:41:09");
        assert_eq!(r.echo.len(), 5);
    }

    #[test]
    fn e2_lower_case_error_with_empty_copy_times() {
        let metrics = concat!(
            r#"{"ingest_start_time":"2024-01-15 06:12:40","ingest_copy_start_time":"","#,
            r#""ingest_copy_end_time":"","ingest_end_time":"2024-01-15 06:12:44"}"#
        );
        let q = query(&[
            ("instrument", "nirspec"),
            ("ingesttype", "lev0"),
            ("koaid", "NS.20240115.22301.10.fits"),
            ("status", "error"),
            ("ingest_error", "MD5_MISMATCH"),
            ("metrics", metrics),
        ]);
        let r = ok(&q);
        assert_eq!(r.instrument, "NIRSPEC");
        assert_eq!(r.status, Some(IpacStatus::Error));
        assert_eq!(r.ingest_error.as_deref(), Some("MD5_MISMATCH"));
        let m = r.metrics.unwrap();
        assert_eq!((m.ingest_copy_start_time, m.ingest_copy_end_time), (None, None));
        assert_eq!(m.ingest_end_time, time("2024-01-15 06:12:44"));
        assert_eq!(r.echo["status"], "ERROR");
        assert_eq!(r.echo["ingest_error"], "MD5_MISMATCH");
        assert_eq!(r.echo["metrics"]["ingest_copy_start_time"], "");
    }

    #[test]
    fn e4_unknown_instrument_gives_both_errors() {
        let e = refused(&with(e1(), "instrument", "HIRESS"));
        assert_eq!(e.errors.len(), 2, "{:?}", e.errors);
        assert!(e.errors[0].starts_with(&format!("HIRESS {INST_SET_ERROR}")), "{}", e.errors[0]);
        assert!(e.errors[0].ends_with(", 'SCALES']"), "{}", e.errors[0]);
        assert_eq!(e.errors[1], "check that koaid HI.20240115.45123.45 matches inst HIRES");
        assert_eq!(e.echo["instrument"], Value::Null);
        assert_eq!(e.echo["koaid"], "HI.20240115.45123.45");
        assert_eq!(e.instrument, None);
    }

    #[test]
    fn e5_bad_seconds_and_no_metrics() {
        let q = query(&[("instrument", "KCWI"), ("ingesttype", "lev0"), ("koaid", "KB.20240115.99999.00.fits"), ("status", "DONE")]);
        let e = refused(&q);
        assert_eq!(e.errors, ["KOAID seconds exceed day", "required params not included"]);
        assert_eq!(e.echo["koaid"], Value::Null);
        assert_eq!(e.echo["status"], "COMPLETE");
        assert_eq!(e.instrument.as_deref(), Some("KCWI"));
    }

    #[test]
    fn e6_empty_query() {
        let e = refused(&Vec::new());
        assert_eq!(e.errors, ["required params not included"]);
        assert!(e.echo.is_empty());
        assert_eq!(e.instrument, None);
    }

    #[test]
    fn e8_drp_level1_product() {
        let q = query(&[
            ("instrument", "KPF"),
            ("ingesttype", "lev1"),
            ("koaid", "KP.20240115.12345.67.fits"),
            ("datadir", "/kpfdata/data_drp/L2/20240115"),
        ]);
        let r = ok(&q);
        let Mode::DrpOne { koaid, datadir } = &r.mode else { panic!("{:?}", r.mode) };
        assert_eq!(koaid.to_string(), "KP.20240115.12345.67");
        assert_eq!(datadir, "/kpfdata/data_drp/L2/20240115");
        assert_eq!((r.status, r.metrics, r.ingest_error), (None, None, None));
        assert_eq!(r.ingest_type.level(), 1);
        assert_eq!(r.echo["datadir"], "/kpfdata/data_drp/L2/20240115");
    }

    #[test]
    fn drp_requests_take_no_metrics_and_ipac_callbacks_no_datadir() {
        let drp = query(&[("instrument", "KPF"), ("ingesttype", "lev1"), ("koaid", "KP.20240115.12345.67.fits"), ("datadir", "/d")]);
        assert_eq!(errs(&with(drp, "metrics", METRICS)), ["metrics not allowed without status (a DRP request)"]);
        let ipac = with(with(e1(), "ingesttype", "lev1"), "datadir", "/d");
        assert_eq!(errs(&ipac), ["datadir not allowed with status (an IPAC callback)"]);
        assert_eq!(errs(&with(e1(), "utdate", "20240115")), ["utdate not allowed with koaid (it names a level-2 night)"]);
    }

    #[test]
    fn kcwi_level2_night() {
        let night = query(&[("instrument", "KCWI"), ("ingesttype", "lev2"), ("utdate", "20240115"), ("status", "COMPLETE")]);
        let night = with(night, "metrics", METRICS);
        let r = ok(&night);
        assert_eq!(r.mode, Mode::IpacNight { utdate: NaiveDate::from_ymd_opt(2024, 1, 15).unwrap() });
        assert_eq!(r.ingest_type, IngestType::Lev2);
        assert!(r.metrics.is_some());
        assert_eq!(errs(&without(night.clone(), "utdate")), ["required params not included"]);
        assert_eq!(errs(&with(night, "utdate", "2024-01-15")), ["date 2024-01-15 not valid. Is the format %Y%m%d?"]);
    }

    #[test]
    fn level2_with_koaid_and_status_is_one_koaid() {
        let q = with(with(e1(), "ingesttype", "lev2"), "koaid", "KB.20240115.12345.67_K1ACAMA.fits");
        let q = with(q, "instrument", "KCWI");
        let r = ok(&q);
        let Mode::IpacOne { koaid } = &r.mode else { panic!("{:?}", r.mode) };
        assert_eq!(koaid.suffix.as_deref(), Some("K1ACAMA"));
        assert_eq!(r.echo["koaid"], "KB.20240115.12345.67_K1ACAMA");
    }

    #[test]
    fn drp_level2_nights() {
        let kcwi = query(&[("instrument", "KCWI"), ("ingesttype", "lev2"), ("utdate", "20240115")]);
        assert_eq!(ok(&kcwi).mode, Mode::DrpNight { utdate: NaiveDate::from_ymd_opt(2024, 1, 15), datadir: None });
        let deimos = query(&[("instrument", "DEIMOS"), ("ingesttype", "lev2"), ("datadir", "/sdata/deimos/redux")]);
        assert_eq!(ok(&deimos).mode, Mode::DrpNight { utdate: None, datadir: Some("/sdata/deimos/redux".to_string()) });
        let kcwi_dir = query(&[("instrument", "KCWI"), ("ingesttype", "lev2"), ("datadir", "/sdata/kcwi")]);
        assert_eq!(errs(&kcwi_dir), ["required params not included"]);
        let deimos_date = query(&[("instrument", "DEIMOS"), ("ingesttype", "lev2"), ("utdate", "20240115")]);
        assert_eq!(errs(&deimos_date), ["required params not included"]);
        let nothing = query(&[("instrument", "KCWI"), ("ingesttype", "lev2")]);
        assert_eq!(errs(&nothing), ["required params not included"]);
        let unknown = query(&[("instrument", "FOO"), ("ingesttype", "lev2")]);
        let e = errs(&unknown);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[1], "required params not included");
    }

    #[test]
    fn level2_metrics_without_status_is_an_error_not_a_panic() {
        let q = query(&[("instrument", "KCWI"), ("ingesttype", "lev2"), ("metrics", METRICS)]);
        assert_eq!(errs(&q), ["required params not included", "metrics not allowed without status (a DRP request)"]);
    }

    #[test]
    fn every_set_member_is_accepted_in_any_case_with_whitespace() {
        let instruments = Instruments::koa();
        for (name, prefixes) in &instruments.table {
            let koaid = format!("{}.20240115.45123.45.fits", prefixes[0]);
            for spelling in [name.to_lowercase(), mangle(name)] {
                let r = ok(&with(with(e1(), "instrument", &spelling), "koaid", &koaid));
                assert_eq!(&r.instrument, name);
            }
        }
        for (status, want) in [("COMPLETE", "COMPLETE"), ("DONE", "COMPLETE"), ("ERROR", "ERROR"), ("WARNING", "WARNING")] {
            assert!(STATUS_SET.contains(&status));
            let r = ok(&with(with(e1(), "status", &mangle(status)), "ingest_error", "X"));
            assert_eq!(r.status.unwrap().as_str(), want);
            assert_eq!(r.echo["status"], want);
        }
        for (i, ty) in INGEST_TYPES.iter().enumerate() {
            let r = ok(&with(e1(), "ingesttype", &mangle(&ty.to_uppercase())));
            assert_eq!(r.ingest_type.as_str(), *ty);
            assert_eq!(r.ingest_type.level(), i as i64);
        }
        for (i, b) in VALID_BOOL.iter().enumerate() {
            let r = ok(&with(with(e1(), "reingest", &mangle(b)), "testonly", &b.to_lowercase()));
            assert_eq!((r.reingest, r.testonly), (i < 3, i < 3), "{b}");
            assert_eq!(r.echo["reingest"], if i < 3 { "TRUE" } else { "FALSE" });
        }
    }

    #[test]
    fn whitespace_only_values_are_blank() {
        for key in ["instrument", "ingesttype", "koaid", "status", "metrics"] {
            let e = errs(&with(e1(), key, " \t\r\n"));
            assert!(e.contains(&format!("{key} is blank")), "{key}: {e:?}");
            assert!(!e.contains(&"required params not included".to_string()), "{key}: {e:?}");
        }
        let e = refused(&with(e1(), "instrument", ""));
        assert_eq!(e.errors[0], "instrument is blank");
        assert_eq!(e.echo["instrument"], Value::Null);
        assert!(!ok(&with(e1(), "reingest", "  ")).reingest);
    }

    #[test]
    fn invalid_values_name_their_set() {
        let e = errs(&with(e1(), "status", "FINE"));
        assert_eq!(e, ["FINE not found in set ['COMPLETE', 'DONE', 'ERROR', 'WARNING']"]);
        let e = errs(&with(e1(), "ingesttype", "lev3"));
        assert_eq!(e, ["lev3 not found in set ['lev0', 'lev1', 'lev2']"]);
        let e = errs(&with(e1(), "reingest", "maybe"));
        assert_eq!(e, ["MAYBE not found in set ['TRUE', '1', 'YES', 'FALSE', '0', 'NO']"]);
    }

    #[test]
    fn unknown_params_give_one_error_each_and_are_not_echoed() {
        for n in 0..5 {
            let mut q = e1();
            for i in 0..n {
                q.push((format!("extra{i}"), "x".to_string()));
            }
            if n == 0 {
                ok(&q);
                continue;
            }
            let e = refused(&q);
            assert_eq!(e.errors.len(), n, "{:?}", e.errors);
            assert!(e.errors.iter().all(|t| t.starts_with("Invalid param extra")), "{:?}", e.errors);
            assert!(!e.echo.contains_key("extra0"));
        }
        let e = refused(&with(with(with(e1(), "apiStatus", "COMPLETE"), "ingestErrors", "x"), "timestamp", "now"));
        let want = [
            "Invalid param apistatus has value COMPLETE",
            "Invalid param ingesterrors has value x",
            "Invalid param timestamp has value now",
        ];
        assert_eq!(e.errors, want);
        assert!(!e.echo.contains_key("timestamp") && !e.echo.contains_key("apistatus") && !e.echo.contains_key("apiStatus"));
    }

    #[test]
    fn repeated_and_blank_keys_are_errors() {
        let mut q = e1();
        q.push(("KOAID".to_string(), "HI.20240115.45123.46.fits".to_string()));
        q.push(("koaid".to_string(), "HI.20240115.45123.47.fits".to_string()));
        let e = refused(&q);
        assert_eq!(e.errors, ["param koaid given more than once"]);
        assert_eq!(e.echo["koaid"], "HI.20240115.45123.45");
        let mut q = e1();
        q.insert(0, (" \t".to_string(), "x".to_string()));
        assert_eq!(errs(&q), ["blank param name has value x"]);
    }

    #[test]
    fn keys_are_normalised_and_stored_normalised() {
        let q = query(&[
            (" Instrument ", "HIRES"),
            ("INGEST TYPE", "lev0"),
            ("KOAID", "HI.20240115.45123.45.fits"),
            ("Status", "COMPLETE"),
            ("metrics\t", METRICS),
            ("Message", "hello  World"),
        ]);
        let r = ok(&q);
        assert_eq!(r.echo["koaid"], "HI.20240115.45123.45");
        assert_eq!(r.echo["ingesttype"], "lev0");
        assert_eq!(r.echo["message"], "hello  World");
        assert!(!r.echo.contains_key("KOAID"));
    }

    #[test]
    fn booleans_zero_and_no_are_false() {
        for (v, want) in [("0", false), ("NO", false), ("no", false), ("false", false), ("1", true), ("yes", true), ("True", true)] {
            assert_eq!(ok(&with(e1(), "reingest", v)).reingest, want, "{v}");
            assert_eq!(ok(&with(e1(), "testonly", v)).testonly, want, "{v}");
        }
    }

    #[test]
    fn koaid_grammar_is_strict() {
        assert_eq!(koaid("HI.20240115.4512\u{0663}.45.fits").unwrap_err(), "check if KOAID seconds is positive integer");
        assert_eq!(koaid("HI.20240115.45123.4\u{FF15}.fits").unwrap_err(), "check if KOAID decimal is positive integer");
        assert_eq!(koaid("HI.2024011\u{0665}.45123.45.fits").unwrap_err(), "date 2024011\u{0665} not valid. Is the format %Y%m%d?");
        assert_eq!(koaid("HI.20240230.45123.45.fits").unwrap_err(), "date 20240230 not valid. Is the format %Y%m%d?");
        assert_eq!(koaid("HI.2024115.45123.45.fits").unwrap_err(), "date 2024115 not valid. Is the format %Y%m%d?");
        assert_eq!(koaid("HI.20240115.4512.45.fits").unwrap_err(), "check KOAID seconds length");
        assert_eq!(koaid("HI.20240115.-4512.45.fits").unwrap_err(), "check if KOAID seconds is positive integer");
        assert_eq!(koaid("HI.20240115.45123.4.fits").unwrap_err(), "check KOAID decimal length");
        assert_eq!(koaid("HI.20240115.86400.00.fits").unwrap_err(), "KOAID seconds exceed day");
        assert_eq!(koaid("HI.20240115.45123.45.fitz").unwrap_err(), "check KOAID file type, must end with .fits");
        assert!(koaid("hi.20240115.45123.45.fits").unwrap_err().starts_with("hi not found in set ['DE', 'DF', 'ES'"));
        let five = "must be five parts (.) separated, ending with file type (ie .fits)";
        assert_eq!(koaid("HI.20240115.45123.45").unwrap_err(), format!("KOAID: HI.20240115.45123.45 {five}"));
        assert_eq!(koaid("HI.20240115.45123.45.fits.fits").unwrap_err(), format!("KOAID: HI.20240115.45123.45.fits.fits {five}"));
        assert_eq!(koaid("HI.20240115.86399.99.fits").unwrap().to_string(), "HI.20240115.86399.99");
        assert_eq!(koaid("SS.20250101.00001.99_qramp.fits").unwrap().to_string(), "SS.20250101.00001.99_qramp");
    }

    #[test]
    fn fits_is_only_stripped_at_the_end() {
        let k = koaid("N2.20240115.45123.45_fits.fits").unwrap();
        assert_eq!(k.suffix.as_deref(), Some("fits"));
        assert_eq!(k.to_string(), "N2.20240115.45123.45_fits");
        assert_eq!(k.fits_name(), "N2.20240115.45123.45_fits.fits");
        assert_eq!(koaid("N2.20240115.45123.45_unp.fits").unwrap().to_string(), "N2.20240115.45123.45_unp");
    }

    #[test]
    fn koaid_suffix_is_letters_and_digits() {
        let long = "x".repeat(33);
        for bad in ["a'b", "a b", "", "a_b", "a;--", long.as_str()] {
            let e = koaid(&format!("HI.20240115.45123.45_{bad}.fits")).unwrap_err();
            assert!(e.starts_with("KOAID suffix") && e.ends_with("must be 1 to 32 letters or digits"), "{bad}: {e}");
        }
        let e = errs(&with(e1(), "koaid", "HI.20240115.45123.45_x'OR'1.fits"));
        assert_eq!(e, ["KOAID suffix x'OR'1 must be 1 to 32 letters or digits"]);
        assert!(koaid(&format!("HI.20240115.45123.45_{}.fits", "x".repeat(32))).is_ok());
    }

    #[test]
    fn koaid_must_belong_to_the_instrument() {
        let e = errs(&with(e1(), "instrument", "KCWI"));
        assert_eq!(e, ["check that koaid HI.20240115.45123.45 matches inst HIRES"]);
        let e = errs(&without(e1(), "instrument"));
        assert_eq!(e, ["required params not included", "check that koaid HI.20240115.45123.45 matches inst HIRES"]);
    }

    #[test]
    fn metrics_must_be_an_object() {
        assert_eq!(errs(&with(e1(), "metrics", "[1, 2]")), ["metrics must be a JSON object, not an array"]);
        assert_eq!(errs(&with(e1(), "metrics", "\"x\"")), ["metrics must be a JSON object, not a string"]);
        let e = errs(&with(e1(), "metrics", "{not json"));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("Cannot parse metrics value: "), "{}", e[0]);
        let e = errs(&with(e1(), "metrics", "{}"));
        assert_eq!(e, ["Missing metrics data - ingest_start_time", "Missing metrics data - ingest_end_time"]);
        assert_eq!(refused(&with(e1(), "metrics", "{}")).echo["metrics"], Value::Null);
    }

    #[test]
    fn metrics_keys() {
        let no_end = r#"{"ingest_start_time":"2024-01-15 12:41:02"}"#;
        assert_eq!(errs(&with(e1(), "metrics", no_end)), ["Missing metrics data - ingest_end_time"]);
        let r = ok(&with(e1(), "metrics", r#"{"ingest_start_time":"2024-01-15 12:41:02","ingest_end_time":"2024-01-15 12:41:15","x":1}"#));
        let m = r.metrics.unwrap();
        assert_eq!((m.ingest_copy_start_time, m.ingest_copy_end_time), (None, None));
        assert_eq!(r.echo["metrics"]["x"], 1);
        let padded = r#"{"ingest_start_time":"2024-1-15 12:41:02","ingest_end_time":"2024-01-15 12:41:15"}"#;
        let e = errs(&with(e1(), "metrics", padded));
        assert_eq!(e, ["Incorrect format for metrics key ingest_start_time: \"2024-1-15 12:41:02\" is not YYYY-MM-DD HH:MM:SS"]);
        let bad = concat!(
            r#"{"ingest_start_time":"2024-01-15 12:41:02","ingest_copy_end_time":"2024-01-15 12:41:0","#,
            r#""ingest_end_time":"2024-01-15 24:00:00"}"#
        );
        let e = errs(&with(e1(), "metrics", bad));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("Incorrect format for metrics key ingest_copy_end_time"));
        assert!(e[1].starts_with("Incorrect format for metrics key ingest_end_time"));
        let number = r#"{"ingest_start_time":20240115,"ingest_end_time":"2024-01-15 12:41:15"}"#;
        assert_eq!(errs(&with(e1(), "metrics", number)), ["Incorrect format for metrics key ingest_start_time: a number is not a string"]);
    }

    #[test]
    fn error_and_warning_need_a_message() {
        let e = errs(&with(e1(), "status", "ERROR"));
        assert_eq!(e, ["status==ERROR should include a message"]);
        let e = errs(&with(e1(), "status", "warning"));
        assert_eq!(e, ["status==WARNING should include a message"]);
        let e = errs(&with(with(e1(), "status", "ERROR"), "ingest_error", "  "));
        assert_eq!(e, ["status==ERROR should include a message"]);
    }

    #[test]
    fn message_stands_in_for_ingest_error() {
        let r = ok(&with(with(e1(), "status", "ERROR"), "message", "DISK_FULL"));
        assert_eq!(r.ingest_error.as_deref(), Some("DISK_FULL"));
        assert_eq!(r.echo["message"], "DISK_FULL");
        assert!(!r.echo.contains_key("ingest_error"));
        let r = ok(&with(with(with(e1(), "status", "ERROR"), "message", "m"), "ingest_error", "E"));
        assert_eq!(r.ingest_error.as_deref(), Some("E"));
        assert_eq!(ok(&with(e1(), "message", "all good")).ingest_error, None);
    }

    #[test]
    fn free_texts_are_bounded() {
        let long = "x".repeat(MAX_TEXT + 1);
        let e = refused(&with(with(e1(), "status", "ERROR"), "ingest_error", &long));
        assert_eq!(e.errors, ["ingest_error is longer than 1024 characters (1025)", "status==ERROR should include a message"]);
        assert_eq!(e.echo["ingest_error"], Value::Null);
        assert_eq!(errs(&with(e1(), "message", &long)), ["message is longer than 1024 characters (1025)"]);
        let r = ok(&with(with(e1(), "status", "ERROR"), "ingest_error", &"é".repeat(MAX_TEXT)));
        assert_eq!(r.ingest_error.unwrap().chars().count(), MAX_TEXT);
        assert!(ok(&with(e1(), "message", "Invalid param x")).echo["message"] == "Invalid param x");
    }

    #[test]
    fn datadir_is_absolute_without_parent_components() {
        let drp = |dir: &str| {
            let q = query(&[("instrument", "KPF"), ("ingesttype", "lev1"), ("koaid", "KP.20240115.12345.67.fits")]);
            with(q, "datadir", dir)
        };
        for bad in ["relative/dir", "/kpfdata/../etc", "/kpfdata/..", "../x", "/a\nb"] {
            assert_eq!(errs(&drp(bad)).len(), 1, "{bad}");
        }
        assert_eq!(errs(&drp("x/y")), ["datadir x/y must be an absolute path without '..'"]);
        assert!(errs(&drp(&format!("/{}", "d".repeat(MAX_TEXT))))[0].starts_with("datadir is longer than 1024"));
        let r = ok(&drp("/kpfdata/a..b/./c"));
        assert!(matches!(r.mode, Mode::DrpOne { ref datadir, .. } if datadir == "/kpfdata/a..b/./c"));
    }

    #[test]
    fn utdate_is_strict() {
        let night = |d: &str| query(&[("instrument", "KCWI"), ("ingesttype", "lev2"), ("utdate", d)]);
        for bad in ["202411", "2024115", "20240230", "2024011\u{0665}", "+2024011", " 20240115x"] {
            assert_eq!(errs(&night(bad)), [format!("date {} not valid. Is the format %Y%m%d?", shown(bad))], "{bad}");
        }
        assert!(matches!(ok(&night("20240229")).mode, Mode::DrpNight { utdate: Some(_), .. }));
    }

    #[test]
    fn start_and_dev_are_accepted() {
        let r = ok(&with(with(e1(), "start", "2024-01-15"), "dev", "true"));
        assert_eq!(r.echo["start"], "2024-01-15");
        assert_eq!(r.echo["dev"], "true");
    }

    #[test]
    fn too_many_params() {
        let q: Query = (0..=MAX_PARAMS).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert_eq!(errs(&q), [format!("too many params ({}; at most {MAX_PARAMS})", MAX_PARAMS + 1)]);
    }

    #[test]
    fn random_koaids_parse() {
        let instruments = Instruments::koa();
        let prefixes: Vec<&str> = instruments.prefixes().collect();
        let mut rng = Lcg(20240115);
        for _ in 0..2000 {
            let prefix = prefixes[rng.below(prefixes.len() as u64) as usize];
            let date = loop {
                let (y, m, d) = (1990 + rng.below(110) as i32, 1 + rng.below(12) as u32, 1 + rng.below(31) as u32);
                if let Some(date) = NaiveDate::from_ymd_opt(y, m, d) {
                    break date;
                }
            };
            let (seconds, fraction) = (rng.below(86_400) as u32, rng.below(100) as u8);
            let bare = format!("{prefix}.{}.{seconds:05}.{fraction:02}", date.format("%Y%m%d"));
            let k = Koaid::parse_fits(&format!("{bare}.fits"), &instruments).unwrap_or_else(|e| panic!("{bare}: {e}"));
            assert_eq!((k.prefix.as_str(), k.date, k.seconds, k.fraction, k.suffix.as_deref()), (prefix, date, seconds, fraction, None));
            assert_eq!(k.to_string(), bare);
            assert!(instruments.instrument_of_prefix(prefix).is_some());
        }
    }

    #[test]
    fn instruments_table() {
        let koa = Instruments::koa();
        assert_eq!(koa.instrument_of_prefix("SI"), Some("SCALES"));
        assert_eq!(koa.instrument_of_prefix("NR"), Some("NIRES"));
        assert_eq!(koa.instrument_of_prefix("nr"), None);
        assert!(koa.contains("SCALES") && !koa.contains("scales"));
        assert_eq!(koa.names().count(), 13);
        assert_eq!(koa.prefixes().count(), 23);
    }
}
