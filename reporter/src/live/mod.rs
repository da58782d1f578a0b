//! The live view (`--live`): on a terminal, a view refreshing in place (processes, modules and
//! labels, the busiest connections, with current rates and totals; [`tui`]); elsewhere, one
//! plain line per interval on stderr ([`lines`]). Both are made from the report as it stands
//! ([`model`]), so they show the numbers the final report will.

pub mod lines;
pub mod model;
pub mod tui;

use std::time::{Duration, Instant};

use sockmeter::report::Report;

use model::{Model, SortKey, View};
use tui::{Key, Tui};

/// What the user asked of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `q`: the view is left (the terminal is back as it was).
    Leave,
    /// Ctrl-C in the view (which reads keys in raw mode, so no signal was sent).
    Interrupt,
}

enum Mode {
    Tui(Tui),
    Lines,
    Off,
}

/// The live view.
pub struct Live {
    mode: Mode,
    model: Model,
    key: SortKey,
    exact: bool,
    title: String,
    interval: Duration,
    last: Option<Instant>,
    view: Option<View>,
    repaint: bool,
}

/// How often keys are looked at while the view is on a terminal.
const KEY_TICK: Duration = Duration::from_millis(100);

impl Live {
    /// Starts the view: on a terminal when stderr is one, plain lines otherwise. `repaint`:
    /// draw the whole screen at each refresh (a command shares the terminal).
    pub fn start(title: &str, interval: Duration, repaint: bool) -> Live {
        let mode = if tui::available() {
            match Tui::enter() {
                Ok(t) => Mode::Tui(t),
                Err(e) => {
                    say!("sockmeter: warning: cannot draw the live view ({e}); one line per interval instead");
                    Mode::Lines
                }
            }
        } else {
            Mode::Lines
        };
        Live {
            mode,
            model: Model::default(),
            key: SortKey::Total,
            exact: false,
            title: title.to_string(),
            interval,
            last: None,
            view: None,
            repaint,
        }
    }

    /// Whether the view has the terminal now.
    pub fn on_terminal(&self) -> bool {
        matches!(self.mode, Mode::Tui(_))
    }

    /// Whether a refresh is due (the caller then builds the report and calls [`Live::show`]).
    pub fn due(&self) -> bool {
        !matches!(self.mode, Mode::Off) && self.last.is_none_or(|t| t.elapsed() >= self.interval)
    }

    /// The longest the caller's loop may wait before calling [`Live::keys`] and [`Live::due`].
    pub fn max_wait(&self) -> Duration {
        match self.mode {
            Mode::Tui(_) => KEY_TICK,
            Mode::Lines => self
                .last
                .map_or(Duration::ZERO, |t| self.interval.saturating_sub(t.elapsed())),
            Mode::Off => Duration::from_secs(3600),
        }
    }

    /// Shows `report` (a refresh).
    pub fn show(&mut self, report: &Report) {
        let now = Instant::now();
        self.last = Some(now);
        let v = self.model.view(report, now, self.key);
        match &mut self.mode {
            Mode::Tui(_) => {
                self.view = Some(v);
                self.draw(self.repaint);
            }
            Mode::Lines => say!("{}", lines::line(&v, &lines::clock())),
            Mode::Off => {}
        }
    }

    fn draw(&mut self, repaint: bool) {
        let (Mode::Tui(t), Some(v)) = (&mut self.mode, &self.view) else {
            return;
        };
        if let Err(e) = t.draw(v, &self.title, self.key, self.exact, repaint) {
            t.leave();
            self.mode = Mode::Off;
            say!("sockmeter: warning: the live view stopped: {e}");
        }
    }

    /// Reads the keys pressed (terminal only): sorting and units change the view at once; `q`
    /// and Ctrl-C are the caller's.
    pub fn keys(&mut self) -> Option<Action> {
        let Mode::Tui(t) = &mut self.mode else { return None };
        let mut action = None;
        let mut redraw = false;
        for k in t.keys() {
            match k {
                Key::Quit => action = action.or(Some(Action::Leave)),
                Key::Interrupt => action = Some(Action::Interrupt),
                Key::Sort(k) => {
                    self.key = k.unwrap_or(self.key.next());
                    redraw = true;
                }
                Key::Exact => {
                    self.exact = !self.exact;
                    redraw = true;
                }
                Key::Resize => redraw = true,
                // Nobody to show it to: the view stops (a `listen` goes on, and the hang-up's
                // SIGHUP stops it as usual).
                Key::Gone => {
                    t.leave();
                    self.mode = Mode::Off;
                    return action;
                }
            }
        }
        if redraw {
            if let Some(v) = &mut self.view {
                model::sort(v, self.key);
            }
            self.draw(true);
        }
        action
    }

    /// Leaves the view: the terminal is given back as it was; no more refreshes.
    pub fn leave(&mut self) {
        if let Mode::Tui(t) = &mut self.mode {
            t.leave();
        }
        self.mode = Mode::Off;
    }
}
