//! The live view where there is no terminal: one plain line per interval on stderr.
//!
//! ```text
//! sockmeter: 12:00:01 2 processes (1 running), 3 connections: in 1.2 MB/s, out 2.0 kB/s; total 4.5 MB in, 6.1 kB out
//! ```

use super::model::{bytes, rate, View};

/// The line for one refresh (`clock`: the time of day).
pub fn line(v: &View, clock: &str) -> String {
    let t = &v.total;
    format!(
        "sockmeter: {clock} {} process{} ({} running), {} connection{}: in {}, out {}; total {} in, {} out",
        v.processes_total,
        if v.processes_total == 1 { "" } else { "es" },
        v.processes_running,
        t.connections,
        if t.connections == 1 { "" } else { "s" },
        rate(t.rx_rate, false),
        rate(t.tx_rate, false),
        bytes(t.rx, false),
        bytes(t.tx, false),
    )
}

/// The time of day now, UTC (`12:00:01`).
pub fn clock() -> String {
    let t = sockmeter::time::rfc3339(sockmeter::time::now_ms());
    t.get(11..19).unwrap_or(&t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::model::Row;

    #[test]
    fn one_line() {
        let v = View {
            processes_total: 2,
            processes_running: 1,
            total: Row {
                rx_rate: 1536,
                tx_rate: 10,
                rx: 3 << 20,
                tx: 84,
                connections: 1,
                ..Row::default()
            },
            ..View::default()
        };
        assert_eq!(
            line(&v, "12:00:01"),
            "sockmeter: 12:00:01 2 processes (1 running), 1 connection: in 1.5 kB/s, out 10 B/s; total 3.1 MB in, 84 B out"
        );
        assert_eq!(clock().len(), 8);
    }
}
