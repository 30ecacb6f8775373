//! Admission by resources: each job's memory is estimated from its FITS
//! headers; jobs start while the sum of the running estimates fits the
//! budget (and a job larger than the budget runs alone). Small frames pass a
//! large one that waits for room — until the large one has waited too long,
//! then nothing new starts before it, so it cannot starve.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fits::FitsFile;

/// Pixels kept decoded in memory by a job (see pipeline::jobhost).
const KEEP_PIXELS: u64 = 8 << 20;
/// Fixed part of a job: component stores, buffers, tables.
const BASE: u64 = 48 << 20;

/// Estimated peak memory of archiving a file (bytes).
pub fn estimate(file: &FitsFile) -> u64 {
    let mut bytes = BASE;
    let mut canvas = 0u64;
    for h in file.hdus.iter().filter(|h| h.has_image()) {
        let plane = h.shape.iter().take(2).fold(1u64, |a, &n| a.saturating_mul(n));
        bytes = bytes.saturating_add(if plane <= KEEP_PIXELS {
            // decoded f32 copy kept + a copy for the median
            plane * 8
        } else {
            // streamed in row chunks, histogram median
            h.shape[0].saturating_mul(256 * 8).saturating_add(4 << 20)
        });
        canvas = canvas.saturating_add(plane);
    }
    // preview canvas (one byte per output pixel, a rotated copy)
    bytes.saturating_add(2 * canvas.min(64 << 20))
}

/// Estimate from a path (headers only); unreadable files get the base.
pub fn estimate_path(path: &std::path::Path) -> u64 {
    crate::fits::load(path).map(|f| estimate(&f)).unwrap_or(BASE)
}

/// The shared budget.
pub struct Admission {
    budget: u64,
    max_jobs: usize,
    patience: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    used: u64,
    running: usize,
    /// The most ever reserved at once.
    peak: u64,
}

/// A reserved share of the budget, returned on drop.
pub struct Ticket {
    owner: Arc<Admission>,
    bytes: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.owner.state.lock().unwrap_or_else(|e| e.into_inner());
        s.used -= self.bytes;
        s.running -= 1;
    }
}

impl Admission {
    pub fn new(budget: u64, max_jobs: usize, patience: Duration) -> Admission {
        Admission { budget, max_jobs: max_jobs.max(1), patience, state: Mutex::new(State::default()) }
    }

    /// Memory reserved by running jobs.
    pub fn used(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).used
    }

    /// The most memory ever reserved at once.
    pub fn peak(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).peak
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn running(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).running
    }

    /// Try to start a job needing `bytes`.
    pub fn try_admit(self: &Arc<Self>, bytes: u64) -> Option<Ticket> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.running >= self.max_jobs {
            return None;
        }
        let fits = s.used + bytes <= self.budget || s.running == 0;
        if !fits {
            return None;
        }
        s.used += bytes;
        s.running += 1;
        s.peak = s.peak.max(s.used);
        Some(Ticket { owner: self.clone(), bytes })
    }

    /// Pick the jobs to start now from those waiting (oldest first): each
    /// that fits starts; once the oldest waiting job has waited longer than
    /// the patience, only it may start. Returns indices into `waiting`.
    pub fn choose(&self, waiting: &[(u64, Instant)]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let starving = waiting.first().is_some_and(|(_, since)| since.elapsed() > self.patience);
        for (i, (bytes, _)) in waiting.iter().enumerate() {
            if s.running >= self.max_jobs {
                break;
            }
            if s.used + bytes <= self.budget || s.running == 0 {
                s.used += bytes;
                s.running += 1;
                s.peak = s.peak.max(s.used);
                out.push(i);
            } else if starving && i == 0 {
                // nothing overtakes a job that waited too long
                break;
            }
        }
        out
    }

    /// A ticket for a job `choose` already counted.
    pub fn ticket(self: &Arc<Self>, bytes: u64) -> Ticket {
        Ticket { owner: self.clone(), bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_jobs_pass_a_waiting_large_one() {
        let a = Arc::new(Admission::new(1000, 4, Duration::from_secs(60)));
        let big = a.try_admit(800).unwrap();
        // another large job does not fit; small ones do
        let now = Instant::now();
        let picked = a.choose(&[(700, now), (50, now), (50, now)]);
        assert_eq!(picked, vec![1, 2]);
        assert_eq!(a.used(), 900);
        drop(big);
        for b in [50, 50] {
            drop(a.ticket(b));
        }
        assert_eq!((a.used(), a.running()), (0, 0));
    }

    #[test]
    fn a_job_larger_than_the_budget_runs_alone_and_nothing_overtakes_a_starving_one() {
        let a = Arc::new(Admission::new(100, 4, Duration::from_millis(0)));
        assert_eq!(a.choose(&[(500, Instant::now())]), vec![0]);
        // it is running: a starving large job at the head blocks the small ones
        let old = Instant::now() - Duration::from_secs(1);
        assert!(a.choose(&[(90, old), (5, Instant::now())]).is_empty());
        drop(a.ticket(500));
        assert_eq!(a.choose(&[(90, old), (5, Instant::now())]), vec![0, 1]);
    }

    #[test]
    fn job_count_is_bounded() {
        let a = Arc::new(Admission::new(u64::MAX, 2, Duration::from_secs(1)));
        let now = Instant::now();
        assert_eq!(a.choose(&[(1, now), (1, now), (1, now)]), vec![0, 1]);
    }
}
