//! The daemon's journal: every accepted trigger is appended (and synced to
//! disk) before the database is asked anything, and acknowledged once the
//! job row exists (or the database said the file is known). Outcomes of
//! jobs that finished while the database was away are kept here too
//! ([`Settle`]) until they are recorded. Unacknowledged lines are replayed
//! when the database returns and at start-up: nothing accepted is lost to a
//! database outage or a crash. When the journal's own disk refuses a write
//! (full), the line is kept in memory and written with the next compaction
//! that succeeds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One accepted trigger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub service: String,
    pub instrument: String,
    pub path: String,
    pub transfer: bool,
    pub time: f64,
    /// The database decides whether the file is new (the first broadcast
    /// after a start, every watched file).
    #[serde(default)]
    pub check: bool,
}

/// The outcome of a job that the database could not take when it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settle {
    pub id: i64,
    /// The lease owner that ran it (a row another worker has claimed since is left alone).
    pub owner: String,
    pub outcome: crate::db::Outcome,
    /// A transient failure: back to the queue after this delay.
    pub retry: Option<Retry>,
}

/// How a settled job goes back to the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    pub delay_s: f64,
    pub max_attempts: i64,
    /// Whether the attempt counts (a full disk's does not).
    pub counted: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Ack { ack: u64 },
    Settled { settled: i64 },
    Settle { settle: Settle },
    Entry(Entry),
}

pub struct Journal {
    path: PathBuf,
    file: File,
    next: u64,
    pending: BTreeMap<u64, Entry>,
    settles: BTreeMap<i64, Settle>,
    /// A line could not be written: the next compaction writes it.
    dirty: bool,
}

impl Journal {
    /// Open (creating) the journal in `dir`, reading what is still unacknowledged.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("triggers.jsonl");
        let mut pending = BTreeMap::new();
        let mut settles = BTreeMap::new();
        let mut next = 1;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // a torn last line (crash while writing) is ignored
                match serde_json::from_str::<Line>(&line) {
                    Ok(Line::Entry(e)) => {
                        next = next.max(e.seq + 1);
                        pending.insert(e.seq, e);
                    }
                    Ok(Line::Ack { ack }) => {
                        pending.remove(&ack);
                    }
                    Ok(Line::Settle { settle }) => {
                        settles.insert(settle.id, settle);
                    }
                    Ok(Line::Settled { settled }) => {
                        settles.remove(&settled);
                    }
                    Err(_) => {}
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut j = Journal { path, file, next, pending, settles, dirty: false };
        j.compact()?;
        Ok(j)
    }

    /// Append one line durably; a failed write (full disk) leaves the
    /// journal dirty, and the next compaction that succeeds writes it.
    fn write(&mut self, line: &Line) -> std::io::Result<()> {
        if self.dirty {
            // the memory already holds this line's change: a compaction writes everything
            return self.compact();
        }
        let mut s = serde_json::to_string(line).map_err(std::io::Error::other)?;
        s.push('\n');
        let r = self.file.write_all(s.as_bytes()).and_then(|_| self.file.sync_data());
        if r.is_err() {
            self.dirty = true;
        }
        r
    }

    /// Append a trigger; returns its sequence number, and whether it is on
    /// disk (an error: kept in memory only, until the disk takes it).
    pub fn append(&mut self, service: &str, instrument: &str, path: &str, transfer: bool, time: f64, check: bool) -> (u64, std::io::Result<()>) {
        let e = Entry { seq: self.next, service: service.into(), instrument: instrument.into(), path: path.into(), transfer, time, check };
        self.next += 1;
        self.pending.insert(e.seq, e.clone());
        let written = self.write(&Line::Entry(e.clone()));
        (e.seq, written)
    }

    /// The database has the trigger `seq` (its row, or its answer that the file is known).
    pub fn ack(&mut self, seq: u64) -> std::io::Result<()> {
        if self.pending.remove(&seq).is_some() {
            self.write(&Line::Ack { ack: seq })?;
        }
        self.compact_when_idle()
    }

    /// Keep a job's outcome until the database takes it.
    pub fn settle(&mut self, s: Settle) -> std::io::Result<()> {
        self.settles.insert(s.id, s.clone());
        self.write(&Line::Settle { settle: s })
    }

    /// The outcome of job `id` is recorded.
    pub fn settled(&mut self, id: i64) -> std::io::Result<()> {
        if self.settles.remove(&id).is_some() {
            self.write(&Line::Settled { settled: id })?;
        }
        self.compact_when_idle()
    }

    fn compact_when_idle(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() && self.settles.is_empty() {
            self.compact()?;
        }
        Ok(())
    }

    /// Entries still waiting for the database, oldest first.
    pub fn pending(&self) -> Vec<Entry> {
        self.pending.values().cloned().collect()
    }

    /// Outcomes still waiting for the database.
    pub fn settles(&self) -> Vec<Settle> {
        self.settles.values().cloned().collect()
    }

    /// Whether every line is on disk.
    pub fn durable(&self) -> bool {
        !self.dirty
    }

    /// Rewrite the file with only what is still pending.
    fn compact(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let written = (|| {
            let mut f = File::create(&tmp)?;
            let lines = self.pending.values().map(|e| Line::Entry(e.clone())).chain(self.settles.values().map(|s| Line::Settle { settle: s.clone() }));
            for line in lines {
                let mut s = serde_json::to_string(&line).map_err(std::io::Error::other)?;
                s.push('\n');
                f.write_all(s.as_bytes())?;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            self.dirty = true;
            return Err(e);
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacked_entries_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(d.path()).unwrap();
            let a = j.append("nsds", "NIRES", "/s/a.fits", true, 1.0, false).0;
            let b = j.append("nsds", "NIRES", "/s/b.fits", true, 2.0, true).0;
            j.ack(a).unwrap();
            assert_eq!(j.pending().len(), 1);
            assert_eq!(j.pending()[0].seq, b);
        }
        // a torn line from a crash is ignored
        let mut f = OpenOptions::new().append(true).open(d.path().join("triggers.jsonl")).unwrap();
        f.write_all(b"{\"seq\": 9, \"serv").unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        let p = j.pending();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "/s/b.fits");
        assert!(p[0].check, "the database-decides flag survives");
        let c = j.append("nsds", "NIRES", "/s/c.fits", true, 3.0, false).0;
        assert!(c > p[0].seq, "sequence numbers keep growing");
        j.ack(p[0].seq).unwrap();
        j.ack(c).unwrap();
        assert!(Journal::open(d.path()).unwrap().pending().is_empty());
        assert_eq!(std::fs::metadata(d.path().join("triggers.jsonl")).unwrap().len(), 0, "compacted");
    }

    #[test]
    fn outcomes_wait_in_the_journal_until_recorded() {
        let d = tempfile::tempdir().unwrap();
        let outcome = crate::db::Outcome { status: Some(crate::db::Status::Complete), status_code: Some("W".into()), ..Default::default() };
        let s = Settle { id: 7, owner: "h-1".into(), outcome, retry: Some(Retry { delay_s: 2.0, max_attempts: 4, counted: false }) };
        {
            let mut j = Journal::open(d.path()).unwrap();
            j.settle(s.clone()).unwrap();
            j.append("nsds", "NIRES", "/s/a.fits", true, 1.0, false).1.unwrap();
        }
        let mut j = Journal::open(d.path()).unwrap();
        assert_eq!(j.settles(), vec![s.clone()], "kept across a crash");
        j.settled(7).unwrap();
        assert!(Journal::open(d.path()).unwrap().settles().is_empty());
    }

    #[test]
    fn a_full_disk_keeps_triggers_in_memory_until_it_takes_them() {
        let d = tempfile::tempdir().unwrap();
        let mut j = Journal::open(d.path()).unwrap();
        // a journal whose file refuses writes, as a full disk does
        j.file = OpenOptions::new().read(true).open(d.path().join("triggers.jsonl")).unwrap();
        let (seq, written) = j.append("nsds", "NIRES", "/s/a.fits", true, 1.0, false);
        assert!(written.is_err() && !j.durable());
        assert_eq!(j.pending().len(), 1, "the trigger is not dropped");
        // the disk takes writes again: the next line brings the lost one with it
        j.append("nsds", "NIRES", "/s/b.fits", true, 2.0, false).1.unwrap();
        assert!(j.durable());
        let back = Journal::open(d.path()).unwrap().pending();
        assert_eq!(back.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["/s/a.fits", "/s/b.fits"]);
        j.ack(seq).unwrap();
    }
}
