//! The live view on a terminal: ratatui tables drawn on stderr in the alternate screen, keys
//! read with crossterm in raw mode. Leaving (`q`, Ctrl-C, the end, a panic) puts the terminal
//! back as it was: raw mode off, the main screen, the cursor shown.

use std::io::{IsTerminal, Stderr};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row as TRow, Table};
use ratatui::Terminal;

use super::model::{bytes, rate, Row, SortKey, View};

/// A key the view acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `q` or Esc: leave the view.
    Quit,
    /// Ctrl-C.
    Interrupt,
    /// `s`: the next sort key; `r`, `t`, `a`: that key.
    Sort(Option<SortKey>),
    /// `b`: exact bytes or human units.
    Exact,
    /// The terminal changed size.
    Resize,
    /// The terminal hung up (its window closed, the session ended).
    Gone,
}

/// Keys read in one call at most.
const MAX_KEYS: usize = 64;

/// The terminal, taken over.
pub struct Tui {
    /// Never dropped: ratatui's drop shows the cursor with `eprintln!` on failure, which panics
    /// when the terminal is gone (stderr gives EIO); [`Tui::leave`] restores it instead.
    terminal: std::mem::ManuallyDrop<Terminal<CrosstermBackend<Stderr>>>,
    active: bool,
    /// The fd crossterm reads keys from (stdin when it is a terminal, else our own /dev/tty),
    /// polled here first: on a terminal that hung up, crossterm's reader would read end of file
    /// forever, in a loop that never returns.
    tty: std::os::fd::RawFd,
    own_tty: bool,
}

/// Whether the live view can be drawn: stderr is a terminal.
pub fn available() -> bool {
    std::io::stderr().is_terminal()
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(std::io::stderr(), terminal::LeaveAlternateScreen, cursor::Show);
}

impl Tui {
    /// Takes over the terminal (raw mode, the alternate screen, no cursor). A panic later puts
    /// it back before its message is printed.
    pub fn enter() -> std::io::Result<Tui> {
        terminal::enable_raw_mode()?;
        if let Err(e) = execute!(std::io::stderr(), terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        let terminal = match Terminal::new(CrosstermBackend::new(std::io::stderr())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        let (tty, own_tty) = if std::io::stdin().is_terminal() {
            (0, false)
        } else {
            // SAFETY: opening the controlling terminal; the fd is ours, closed on drop.
            let fd = unsafe { libc::open(c"/dev/tty".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY) };
            (fd, fd >= 0)
        };
        Ok(Tui {
            terminal: std::mem::ManuallyDrop::new(terminal),
            active: true,
            tty,
            own_tty,
        })
    }

    /// Whether the terminal has input (Some(true)), none now (Some(false)), or hung up (None).
    fn input(&self) -> Option<bool> {
        if self.tty < 0 {
            return Some(false);
        }
        let mut p = libc::pollfd {
            fd: self.tty,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one valid pollfd, without waiting.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        if n < 0 {
            return Some(false);
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return None;
        }
        Some(p.revents & libc::POLLIN != 0)
    }

    /// Keys pressed since the last call (never waits).
    pub fn keys(&mut self) -> Vec<Key> {
        let mut out = Vec::new();
        match self.input() {
            None => return vec![Key::Gone],
            Some(false) => return out,
            Some(true) => {}
        }
        while self.active && out.len() < MAX_KEYS && event::poll(std::time::Duration::ZERO).unwrap_or(false) {
            let Ok(ev) = event::read() else { break };
            // A key is always followed by a look at the terminal: a hang-up stops here.
            if self.input().is_none() {
                out.push(Key::Gone);
                break;
            }
            match ev {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                    out.extend(match k.code {
                        KeyCode::Char('c') if ctrl => Some(Key::Interrupt),
                        KeyCode::Char('q') | KeyCode::Esc => Some(Key::Quit),
                        KeyCode::Char('s') => Some(Key::Sort(None)),
                        KeyCode::Char('r') => Some(Key::Sort(Some(SortKey::Rx))),
                        KeyCode::Char('t') => Some(Key::Sort(Some(SortKey::Tx))),
                        KeyCode::Char('a') => Some(Key::Sort(Some(SortKey::Total))),
                        KeyCode::Char('b') => Some(Key::Exact),
                        _ => None,
                    });
                }
                Event::Resize(..) => out.push(Key::Resize),
                _ => {}
            }
        }
        out
    }

    /// Draws `v`. `repaint`: the whole screen is drawn again (the command under `run` may have
    /// written over it).
    pub fn draw(&mut self, v: &View, title: &str, key: SortKey, exact: bool, repaint: bool) -> std::io::Result<()> {
        if repaint {
            self.terminal.clear()?;
        }
        self.terminal.draw(|f| {
            let [head, procs, groups, conns, foot] = Layout::vertical([
                Constraint::Length(2),
                Constraint::Ratio(1, 4),
                Constraint::Ratio(1, 4),
                Constraint::Min(4),
                Constraint::Length(1),
            ])
            .areas(f.area());
            let t = &v.total;
            let header = vec![
                Line::from(format!(
                    "{} process{} ({} running), {} connection{} - {title}",
                    v.processes_total,
                    if v.processes_total == 1 { "" } else { "es" },
                    v.processes_running,
                    t.connections,
                    if t.connections == 1 { "" } else { "s" }
                ))
                .style(Style::new().add_modifier(Modifier::BOLD)),
                Line::from(format!(
                    "total: in {} ({}), out {} ({})",
                    bytes(t.rx, exact),
                    rate(t.rx_rate, exact),
                    bytes(t.tx, exact),
                    rate(t.tx_rate, exact)
                )),
            ];
            f.render_widget(Paragraph::new(header), head);
            let bold = Style::new().add_modifier(Modifier::BOLD);
            let nums = |r: &Row| {
                [
                    rate(r.rx_rate, exact),
                    rate(r.tx_rate, exact),
                    bytes(r.rx, exact),
                    bytes(r.tx, exact),
                ]
            };
            fn table<'a>(
                title: &str,
                head: Vec<&'a str>,
                rows: Vec<Vec<String>>,
                widths: Vec<Constraint>,
                bold: Style,
            ) -> Table<'a> {
                Table::new(rows.into_iter().map(TRow::new), widths)
                    .header(TRow::new(head).style(bold))
                    .block(Block::bordered().title(title.to_string()))
            }
            let w = |n: u16| Constraint::Length(n);
            let proc_rows = v
                .processes
                .iter()
                .map(|r| {
                    let mut c = vec![r.pid.to_string(), r.process.clone()];
                    c.extend(nums(r));
                    c.push(r.connections.to_string());
                    c.push(r.detail.clone());
                    c
                })
                .collect();
            f.render_widget(
                table(
                    "processes",
                    vec!["pid", "process", "in/s", "out/s", "in", "out", "conns", "state"],
                    proc_rows,
                    vec![w(8), w(16), w(12), w(12), w(12), w(12), w(6), Constraint::Fill(1)],
                    bold,
                ),
                procs,
            );
            let group_rows = v
                .groups
                .iter()
                .map(|r| {
                    let mut c = vec![r.pid.to_string(), r.process.clone(), r.what.clone()];
                    c.extend(nums(r));
                    c.push(r.connections.to_string());
                    c
                })
                .collect();
            f.render_widget(
                table(
                    "modules and labels",
                    vec![
                        "pid",
                        "process",
                        "module / label",
                        "in/s",
                        "out/s",
                        "in",
                        "out",
                        "conns",
                    ],
                    group_rows,
                    vec![w(8), w(16), Constraint::Fill(1), w(12), w(12), w(12), w(12), w(6)],
                    bold,
                ),
                groups,
            );
            let conn_rows = v
                .connections
                .iter()
                .map(|r| {
                    let mut c = vec![r.pid.to_string(), r.process.clone(), r.what.clone(), r.detail.clone()];
                    c.extend(nums(r));
                    c.push(if r.live { "open" } else { "closed" }.to_string());
                    c
                })
                .collect();
            f.render_widget(
                table(
                    "busiest connections",
                    vec![
                        "pid",
                        "process",
                        "connection",
                        "module",
                        "in/s",
                        "out/s",
                        "in",
                        "out",
                        "",
                    ],
                    conn_rows,
                    vec![
                        w(8),
                        w(12),
                        Constraint::Fill(2),
                        Constraint::Fill(1),
                        w(12),
                        w(12),
                        w(12),
                        w(12),
                        w(6),
                    ],
                    bold,
                ),
                conns,
            );
            f.render_widget(
                Paragraph::new(format!(
                    "sort: {} (s, or r/t/a)  units: {} (b)  q: leave the view  Ctrl-C: interrupt",
                    key.name(),
                    if exact { "bytes" } else { "human" }
                )),
                foot,
            );
        })?;
        Ok(())
    }

    /// Gives the terminal back as it was.
    pub fn leave(&mut self) {
        if self.active {
            self.active = false;
            restore();
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.leave();
        if self.own_tty {
            // SAFETY: our own fd.
            unsafe { libc::close(self.tty) };
        }
    }
}
