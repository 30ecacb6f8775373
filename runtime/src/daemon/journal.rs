//! The trigger journal: every accepted trigger is appended (and synced to
//! disk) before the database is told, and acknowledged once the job row
//! exists. When the database is down the daemon keeps appending; unacked
//! entries are replayed when it returns and at start-up. Nothing accepted is
//! lost to a database outage or a crash.

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
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Ack { ack: u64 },
    Entry(Entry),
}

pub struct Journal {
    path: PathBuf,
    file: File,
    next: u64,
    pending: BTreeMap<u64, Entry>,
}

impl Journal {
    /// Open (creating) the journal in `dir`, reading what is still unacknowledged.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("triggers.jsonl");
        let mut pending = BTreeMap::new();
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
                    Err(_) => {}
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut j = Journal { path, file, next, pending };
        j.compact()?;
        Ok(j)
    }

    fn write(&mut self, line: &Line) -> std::io::Result<()> {
        let mut s = serde_json::to_string(line).map_err(std::io::Error::other)?;
        s.push('\n');
        self.file.write_all(s.as_bytes())?;
        self.file.sync_data()
    }

    /// Append a trigger (durably); returns its sequence number.
    pub fn append(&mut self, service: &str, instrument: &str, path: &str, transfer: bool, time: f64) -> std::io::Result<u64> {
        let e = Entry { seq: self.next, service: service.into(), instrument: instrument.into(), path: path.into(), transfer, time };
        self.next += 1;
        self.write(&Line::Entry(e.clone()))?;
        self.pending.insert(e.seq, e.clone());
        Ok(e.seq)
    }

    /// The job row for `seq` exists.
    pub fn ack(&mut self, seq: u64) -> std::io::Result<()> {
        if self.pending.remove(&seq).is_some() {
            self.write(&Line::Ack { ack: seq })?;
        }
        if self.pending.is_empty() {
            self.compact()?;
        }
        Ok(())
    }

    /// Entries still waiting for the database, oldest first.
    pub fn pending(&self) -> Vec<Entry> {
        self.pending.values().cloned().collect()
    }

    /// Rewrite the file with only the pending entries.
    fn compact(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            for e in self.pending.values() {
                let mut s = serde_json::to_string(&Line::Entry(e.clone())).map_err(std::io::Error::other)?;
                s.push('\n');
                f.write_all(s.as_bytes())?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
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
            let a = j.append("nsds", "NIRES", "/s/a.fits", true, 1.0).unwrap();
            let b = j.append("nsds", "NIRES", "/s/b.fits", true, 2.0).unwrap();
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
        let c = j.append("nsds", "NIRES", "/s/c.fits", true, 3.0).unwrap();
        assert!(c > p[0].seq, "sequence numbers keep growing");
        j.ack(p[0].seq).unwrap();
        j.ack(c).unwrap();
        assert!(Journal::open(d.path()).unwrap().pending().is_empty());
        assert_eq!(std::fs::metadata(d.path().join("triggers.jsonl")).unwrap().len(), 0, "compacted");
    }
}
