//! How the run's processes ended, learnt outside their own streams.
//!
//! A process's own stream can say how it ended only when it knew (`_exit(code)`, a fatal signal
//! its reporting thread caught, its exit handler, or its shipper's look at the zombie). Two
//! other witnesses know for sure: the reporter itself, for the processes it reaps (the command,
//! and descendants orphaned to it as the run's child subreaper), and a metered parent, whose
//! `wait` the shim sees (it appends to the endings file, `sockmeter::wire::endings_path`). [`Endings`] gathers both; the report gives each process
//! image the first ending of its pid at or after the image started (so a reused pid does not
//! inherit an older process's ending).

use std::collections::HashMap;

use sockmeter::wire::ExitStatus;
use sockmeter::ProcessReport;

/// Endings by pid: (when, how), in the order they were learnt.
#[derive(Debug, Default)]
pub struct Endings {
    by_pid: HashMap<u32, Vec<(u64, ExitStatus)>>,
}

impl Endings {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Process `pid` ended as `status` at `at` (ms since the epoch); an ending already known
    /// is not added again.
    pub fn add(&mut self, pid: u32, at: u64, status: ExitStatus) {
        let list = self.by_pid.entry(pid).or_default();
        if !list.contains(&(at, status)) {
            list.push((at, status));
        }
    }

    /// Every ending: (pid, when, how), by pid.
    pub fn all(&self) -> Vec<(u32, u64, ExitStatus)> {
        let mut out: Vec<(u32, u64, ExitStatus)> = self
            .by_pid
            .iter()
            .flat_map(|(pid, l)| l.iter().map(|(at, st)| (*pid, *at, *st)))
            .collect();
        out.sort_by_key(|(pid, at, _)| (*pid, *at));
        out
    }

    /// Adds what metered parents reaped (the endings file beside the reporter's socket:
    /// `sockmeter::wire::endings_path`).
    pub fn add_file(&mut self, path: &std::path::Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        for (pid, at, st) in sockmeter::wire::parse_endings(&text) {
            self.add(pid, at, st);
        }
    }

    /// The first ending of `pid` at or after `started_ms`.
    pub fn find(&self, pid: u32, started_ms: u64) -> Option<(u64, ExitStatus)> {
        self.by_pid
            .get(&pid)?
            .iter()
            .filter(|(at, _)| *at >= started_ms)
            .min_by_key(|(at, _)| *at)
            .copied()
    }

    /// Gives `report` (an image of `pid` that started at `started_ms`) its ending, if known.
    pub fn apply(&self, report: &mut ProcessReport, started_ms: u64) {
        if let Some((at, st)) = self.find(report.pid, started_ms) {
            report.ended_with(st, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus {
            exit_code: Some(code),
            signal: None,
        }
    }

    #[test]
    fn an_image_gets_the_first_ending_after_it_started() {
        let mut e = Endings::new();
        e.add(7, 100, exited(3));
        e.add(
            7,
            500,
            ExitStatus {
                exit_code: None,
                signal: Some(2),
            },
        );
        assert_eq!(e.find(7, 50), Some((100, exited(3))));
        assert_eq!(
            e.find(7, 200).map(|(at, st)| (at, st.signal)),
            Some((500, Some(2))),
            "a reused pid"
        );
        assert_eq!(e.find(7, 600), None);
        assert_eq!(e.find(8, 0), None);
        let mut r = ProcessReport {
            pid: 7,
            end: "lost".into(),
            ..Default::default()
        };
        e.apply(&mut r, 200);
        assert_eq!((r.end.as_str(), r.signal, r.exit_code), ("signal", Some(2), None));
        assert!(r.ended_at.is_some());
        let mut exec = ProcessReport {
            pid: 7,
            end: "exec".into(),
            ..Default::default()
        };
        e.apply(&mut exec, 0);
        assert_eq!(
            (exec.end.as_str(), exec.exit_code),
            ("exec", None),
            "an image that exec'd keeps its end"
        );
    }

    #[test]
    fn the_kernels_word_overrides_what_the_process_said_of_itself() {
        let mut e = Endings::new();
        e.add(
            9,
            300,
            ExitStatus {
                exit_code: None,
                signal: Some(9),
            },
        );
        // It said exit 4 at `exit()`; an exit handler that ran after the shim's killed it.
        let mut r = ProcessReport {
            pid: 9,
            end: "exit".into(),
            exit_code: Some(4),
            ..Default::default()
        };
        e.apply(&mut r, 100);
        assert_eq!((r.end.as_str(), r.exit_code, r.signal), ("signal", None, Some(9)));
    }
}
