//! What the daemon knows of each service's keyword source: up or down,
//! the last problem and its code, and a count of problems by code — fed by
//! the sources' [`SourceEvent`](crate::sources::SourceEvent)s, shown on the
//! status page and in `/metrics`, recorded in `source_status`.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::sources::SourceState;

/// A service's source, as its events describe it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceStatus {
    /// None: nothing heard yet; Some(false): no broadcasts arrive.
    pub up: Option<bool>,
    /// The last problem's code (None while up and well).
    pub code: Option<&'static str>,
    /// Where broadcasts come from (up), or the last problem in one line.
    pub detail: String,
    /// When the state began.
    pub since: Option<NaiveDateTime>,
    /// Problems by code since start.
    pub problems: BTreeMap<&'static str, u64>,
}

/// Problems that broadcasts flowing again do not clear (only their own
/// [`SourceState::Cleared`]).
const LASTING: [&str; 2] = ["KTL_UNKNOWN_KEY", "KTL_READ_ERROR"];

/// A state as `source_status` records it: (state, code, message, since).
pub type Recorded = (&'static str, Option<&'static str>, String, NaiveDateTime);

/// One line of at most 300 characters (a peer's traceback is not a message).
pub fn one_line(text: &str) -> String {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if first.chars().count() > 300 { format!("{}…", first.chars().take(300).collect::<String>()) } else { first.to_string() }
}

impl SourceStatus {
    /// Take in an event; the state to record when it changed.
    pub fn apply(&mut self, state: &SourceState) -> Option<Recorded> {
        let before = (self.up, self.code, self.detail.clone());
        match state {
            SourceState::Up(at) => {
                self.up = Some(true);
                // broadcasts flowing do not mend a missing key or a failed read
                if !self.code.is_some_and(|c| LASTING.contains(&c)) {
                    self.code = None;
                    self.detail = one_line(at);
                }
            }
            SourceState::Cleared(code) => {
                if self.code == Some(*code) {
                    self.code = None;
                    self.detail = "problem cleared".into();
                }
            }
            SourceState::Failed(e) => {
                *self.problems.entry(e.code()).or_default() += 1;
                if e.is_down() {
                    self.up = Some(false);
                }
                self.code = Some(e.code());
                self.detail = one_line(&e.to_string());
            }
        }
        if before == (self.up, self.code, self.detail.clone()) {
            return None;
        }
        let now = crate::db::now();
        self.since = Some(now);
        Some((self.state(), self.code, self.detail.clone(), now))
    }

    /// `UP`, `DOWN` or `ERROR` (up, but the last read or message failed).
    pub fn state(&self) -> &'static str {
        match (self.up, self.code) {
            (Some(false), _) => "DOWN",
            (_, Some(_)) => "ERROR",
            _ => "UP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceError;

    #[test]
    fn changes_are_recorded_once_and_problems_counted() {
        let mut s = SourceStatus::default();
        let silent = SourceState::Failed(SourceError::Silent("no broadcast".into()));
        let (state, code, _, _) = s.apply(&silent).unwrap();
        assert_eq!((state, code), ("DOWN", Some("KTL_SOURCE_SILENT")));
        assert_eq!(s.apply(&silent), None, "the same problem again is no change");
        assert_eq!(s.problems["KTL_SOURCE_SILENT"], 2);
        let (state, code, detail, _) = s.apply(&SourceState::Up("tcp://h:1".into())).unwrap();
        assert_eq!((state, code, detail.as_str()), ("UP", None, "tcp://h:1"));
        let read = SourceState::Failed(SourceError::Read("mKTL GET nids.outdir: KeyError: x\nTraceback (most recent call last):".into()));
        let (state, code, detail, _) = s.apply(&read).unwrap();
        assert_eq!((state, code, detail.as_str()), ("ERROR", Some("KTL_READ_ERROR"), "mKTL GET nids.outdir: KeyError: x"));
        assert_eq!(s.up, Some(true), "a failed read leaves the subscription up");
        assert_eq!(s.apply(&SourceState::Up("tcp://h:1".into())), None, "broadcasts do not clear a failed read");
        let (state, code, _, _) = s.apply(&SourceState::Cleared("KTL_READ_ERROR")).unwrap();
        assert_eq!((state, code), ("UP", None));
        s.apply(&SourceState::Failed(SourceError::UnknownKey("no key loutfile".into())));
        assert_eq!(s.apply(&SourceState::Up("tcp://h:1".into())), None);
        assert_eq!(s.state(), "ERROR", "a missing key stays on record while broadcasts flow");
        assert_eq!(s.apply(&SourceState::Cleared("KTL_READ_ERROR")), None, "another code's clearing changes nothing");
    }
}
