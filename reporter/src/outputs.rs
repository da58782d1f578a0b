//! What a reporter shows while it runs, besides its final summary and report: the event stream
//! (`--json-stream`), the live view (`--live`) and the Prometheus metrics (`--prometheus`).
//! `run` and `listen` drive them the same way: [`Outputs::after_poll`] after each round of the
//! collector's loop, and [`Outputs::finish`] with the final report.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use sockmeter::report::Report;

use crate::collector::Collector;
use crate::endings::Endings;
use crate::live::{Action, Live};
use crate::prometheus::Exporter;
use crate::report_out;
use crate::stream::{Event, StreamOut, STREAM_VERSION};

/// How often the metrics are brought up to date (the live view refreshes at its interval).
const METRICS_EVERY: Duration = Duration::from_millis(250);

/// What to show.
pub struct Options {
    /// `--json-stream FILE` (`-`: stdout).
    pub stream: Option<PathBuf>,
    /// Append to the stream (a `listen` continuing it) rather than replace it.
    pub append: bool,
    /// `--live`, with its title and refresh interval.
    pub live: Option<(String, Duration)>,
    /// The live view draws the whole screen each time (a command shares the terminal).
    pub repaint: bool,
    /// `--prometheus ADDR`.
    pub prometheus: Option<SocketAddr>,
    /// `--unix`.
    pub unix: bool,
}

/// The outputs of one reporter.
pub struct Outputs {
    stream: Option<StreamOut>,
    live_opts: Option<(String, Duration, bool)>,
    live: Option<Live>,
    exporter: Option<Exporter>,
    unix: bool,
    metrics_at: Option<Instant>,
    /// Something new came since the metrics were last brought up to date.
    dirty: bool,
    /// Warnings held while the live view has the terminal (said when it is left).
    held: Vec<String>,
}

impl Outputs {
    /// Opens the stream and starts the exporter (a port in use or an unwritable file is an
    /// error before anything runs); the live view starts with [`Outputs::start`].
    pub fn new(o: Options) -> Result<Outputs> {
        let stream = match &o.stream {
            Some(p) => Some(StreamOut::create(p, o.append)?),
            None => None,
        };
        let exporter = match o.prometheus {
            Some(addr) => Some(Exporter::start(addr)?),
            None => None,
        };
        Ok(Outputs {
            stream,
            live_opts: o.live.map(|(t, i)| (t, i, o.repaint)),
            live: None,
            exporter,
            unix: o.unix,
            metrics_at: None,
            dirty: true,
            held: Vec::new(),
        })
    }

    /// Where the metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.exporter.as_ref().map(Exporter::addr)
    }

    /// The reporter starts: the stream's header, recording on, the live view on.
    pub fn start(&mut self, collector: &mut Collector, reporter: &str, command: &[OsString]) {
        if let Some(s) = &mut self.stream {
            collector.record();
            s.event(&Event::Stream {
                stream: STREAM_VERSION,
                reporter: reporter.into(),
                command: command.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
                unix: self.unix,
                at: sockmeter::time::now_ms(),
            });
        }
        if let Some((title, interval, repaint)) = &self.live_opts {
            self.live = Some(Live::start(title, *interval, *repaint));
        }
    }

    /// The longest the collector's loop may sleep before calling [`Outputs::after_poll`].
    pub fn max_wait(&self) -> Duration {
        let live = self.live.as_ref().map_or(Duration::from_secs(3600), Live::max_wait);
        if self.exporter.is_some() {
            live.min(METRICS_EVERY)
        } else {
            live
        }
    }

    /// After a round of the collector: the stream gets what came in, the live view refreshes
    /// when due, the metrics every [`METRICS_EVERY`]. Returns what the user asked in the view.
    pub fn after_poll(&mut self, collector: &mut Collector, endings: &Endings) -> Option<Action> {
        let records = collector.take_records();
        if !records.is_empty() {
            self.dirty = true;
        }
        if let Some(s) = &mut self.stream {
            s.write(&records);
        }
        let action = self.live.as_mut().and_then(Live::keys);
        let live_due = self.live.as_ref().is_some_and(Live::due);
        let metrics_due = self.exporter.is_some()
            && (self.dirty || self.metrics_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)))
            && self.metrics_at.is_none_or(|t| t.elapsed() >= METRICS_EVERY);
        if live_due || metrics_due {
            let report = self.snapshot(collector, endings);
            if live_due {
                if let Some(l) = &mut self.live {
                    l.show(&report);
                }
            }
            if metrics_due {
                self.update_metrics(&report);
            }
        }
        action
    }

    fn snapshot(&self, collector: &Collector, endings: &Endings) -> Report {
        let conns: Vec<&crate::conn::Conn> = collector.conns().collect();
        report_out::assemble_refs(&[], None, self.unix, &conns, "running", endings)
    }

    fn update_metrics(&mut self, report: &Report) {
        if let Some(e) = &self.exporter {
            e.update(report);
        }
        self.metrics_at = Some(Instant::now());
        self.dirty = false;
    }

    /// Leaves the live view (the terminal is given back as it was), then says the warnings
    /// held meanwhile.
    pub fn leave_view(&mut self) {
        if let Some(l) = &mut self.live {
            l.leave();
        }
        for w in std::mem::take(&mut self.held) {
            say!("sockmeter: warning: {w}");
        }
    }

    /// Says warnings on stderr, or holds them while the live view has the terminal.
    pub fn warn(&mut self, warnings: Vec<String>) {
        if self.live.as_ref().is_some_and(Live::on_terminal) {
            self.held.extend(warnings);
        } else {
            for w in warnings {
                say!("sockmeter: warning: {w}");
            }
        }
    }

    /// The reporter is done: the view is left, the metrics show the final report, and the
    /// stream gets the last lines (`records`, what was left in the collector), the endings and
    /// its end.
    pub fn finish(&mut self, records: &[u8], endings: &Endings, report: &Report) {
        self.leave_view();
        self.update_metrics(report);
        if let Some(s) = &mut self.stream {
            s.write(records);
            for (pid, at, status) in endings.all() {
                s.event(&Event::Ending { pid, at, status });
            }
            s.event(&Event::Finish {
                at: sockmeter::time::now_ms(),
                exit_status: report.exit_status,
                notices: report.notices.clone(),
            });
        }
    }
}
