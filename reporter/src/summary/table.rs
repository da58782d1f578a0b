//! Tables and styles: columns padded to their widest cell, indented two spaces; a header row
//! (dimmed on a colour terminal); bold lines. Styles are ANSI sequences added only when the
//! caller asked for colour (`Paint`); the stream they are written to removes them again where
//! colour is not wanted (`anstream`: not a terminal, `NO_COLOR`).

use anstyle::{AnsiColor, Style};

/// Whether to add colour, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paint {
    /// Add ANSI styles.
    pub color: bool,
}

impl Paint {
    fn with(self, style: Style, s: &str) -> String {
        if self.color && !s.is_empty() {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }

    /// A line that introduces a block (a process, the total).
    pub fn bold(self, s: &str) -> String {
        self.with(Style::new().bold(), s)
    }

    /// A table's header row.
    pub fn dim(self, s: &str) -> String {
        self.with(Style::new().dimmed(), s)
    }

    /// Something the user should act on or know (a warning, a glob that matched nothing).
    pub fn warn(self, s: &str) -> String {
        self.with(Style::new().fg_color(Some(AnsiColor::Yellow.into())), s)
    }
}

/// A table: a header and rows of cells, each row as many cells as the header.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            rows: vec![header.into_iter().map(Into::into).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Rows added (the header not counted).
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    /// Inserts columns `names` at `at`, each row getting the cells `fill` gives it.
    pub fn insert_columns(&mut self, at: usize, names: &[&str], fill: impl Fn(usize) -> Vec<String>) {
        for (i, r) in self.rows.iter_mut().enumerate() {
            let cells = if i == 0 {
                names.iter().map(|s| s.to_string()).collect()
            } else {
                fill(i - 1)
            };
            r.splice(at..at, cells);
        }
    }

    /// The lines: two spaces of indent, two between columns, no trailing spaces.
    pub fn lines(&self, paint: Paint) -> Vec<String> {
        let cols = self.rows[0].len();
        let mut widths = vec![0usize; cols];
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let cells: Vec<String> = r.iter().zip(&widths).map(|(c, &w)| format!("{c:<w$}")).collect();
                let line = cells.join("  ");
                let line = line.trim_end();
                if i == 0 {
                    format!("  {}", paint.dim(line))
                } else {
                    format!("  {line}")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_colour_is_only_added_when_asked() {
        let mut t = Table::new(["proto", "peer", "tx"]);
        t.row(vec!["tcp".into(), "localhost (127.0.0.1:80)".into(), "85 B".into()]);
        t.row(vec!["udp".into(), "-".into(), "".into()]);
        t.insert_columns(2, &["role"], |i| vec![["connected", "datagram"][i].to_string()]);
        assert_eq!(
            t.lines(Paint::default()),
            [
                "  proto  peer                      role       tx",
                "  tcp    localhost (127.0.0.1:80)  connected  85 B",
                "  udp    -                         datagram",
            ]
        );
        let colored = t.lines(Paint { color: true });
        assert_eq!(
            colored[0],
            "  \u{1b}[2mproto  peer                      role       tx\u{1b}[0m"
        );
        assert_eq!(colored[1], "  tcp    localhost (127.0.0.1:80)  connected  85 B");
        assert_eq!(Paint { color: true }.bold("x"), "\u{1b}[1mx\u{1b}[0m");
        assert_eq!(Paint::default().warn("x"), "x");
    }
}
