//! The human summary `sockmeter run` prints on stderr: who talked how much to whom.
//!
//! Per process (the default, up to [`AUTO_GROUP`] processes): a line with its bytes in and
//! out, its connections and its peers (by the name the program looked up, when it did:
//! `localhost (127.0.0.1:8000)`), a line with its command line, how it ended, how long it ran
//! and its average rate, a table of its sockets, a table of its modules when one of them is not
//! the executable (how each came in: `dlopen`, `linked`, `preloaded`..., and when). More
//! processes than that (a script running curl thirty times) are grouped by executable, one
//! row each; `--group-by process|exe|module|peer` chooses, `--top N` keeps the N busiest.
//!
//! What moved nothing (a socket, a process: curl's internal socketpair) is left out unless
//! `--all`. Unix-domain sockets have their own section unless `--unix` counts them. Byte
//! counts are in decimal units (`3.0 MB`) or exact with `--bytes`. What the kernel witness saw
//! move outside the hooked calls (`unseen`) gets its own columns and a line saying how much and
//! where; a process that uses io_uring, TCP connections without a witness, each distinct
//! notice, and `--attribute` globs that matched nothing are said once.
//!
//! ```text
//! sockmeter: pid 4711 curl: 3.0 MB in, 85 B out over 1 connection with 127.0.0.1:8000
//!   curl -s -o /dev/null http://127.0.0.1:8000/big.bin  (exit 0 after 50 ms, 60.0 MB/s)
//!   proto  local            peer            role       in      out   module
//!   tcp    127.0.0.1:53422  127.0.0.1:8000  connected  3.0 MB  85 B  curl
//! sockmeter: total: 3.0 MB in, 85 B out over 1 connection in 1 process
//! ```

mod groups;
mod table;
mod units;

use std::collections::{BTreeMap, HashMap};

use sockmeter::report::{ProcessReport, Report, SocketReport};
use sockmeter::Family;

pub use groups::GroupBy;
pub use table::Paint;
pub use units::{human, Units};

use table::Table;
use units::{basename, command_line, ending, plural};

/// Socket rows shown per process; the rest are counted in one line (the JSON has them all).
pub const MAX_ROWS: usize = 20;
/// Peers named on a process line.
const MAX_PEERS: usize = 3;
/// Beyond this many processes to show, the summary groups them by executable (unless
/// `--group-by` says otherwise).
pub const AUTO_GROUP: usize = 8;

/// How to write the summary.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--all`: sockets and processes that moved nothing too.
    pub all: bool,
    /// Byte counts in units, or exact (`--bytes`).
    pub units: Units,
    /// `--group-by` (none: per process, grouped by executable past [`AUTO_GROUP`]).
    pub group_by: Option<GroupBy>,
    /// `--top N`: only the N busiest processes or rows.
    pub top: Option<usize>,
    /// Colour.
    pub paint: Paint,
    /// Run notices already said (before the command ran): not said again.
    pub said: Vec<String>,
    /// The `--attribute` globs in effect: those that matched nothing in any process are named.
    pub globs: Vec<String>,
}

/// The process's short name: its argv[0] or executable, without the directory.
pub fn process_name(p: &ProcessReport) -> &str {
    let n = p
        .argv
        .first()
        .map(|a| basename(a))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| basename(&p.exe));
    if n.is_empty() {
        "?"
    } else {
        n
    }
}

/// A peer for people: `name (address)` when the program looked it up by name.
pub fn peer_text(addr: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{n} ({addr})"),
        None => addr.to_string(),
    }
}

/// Peers of connections and datagram peers, busiest first (then in the order first seen),
/// without repeats, by name when known. Linear in the sockets (a process may have tens of
/// thousands), and the sums saturate (counts from a hostile stream may be near `u64::MAX`).
fn peers(sockets: &[&SocketReport]) -> Vec<String> {
    let mut seen: Vec<(&str, Option<&str>, u64)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for s in sockets {
        let own = s
            .peer
            .as_deref()
            .filter(|_| s.is_connection() && s.peers.is_empty())
            .map(|p| (p, s.peer_name.as_deref(), s.tx_bytes.saturating_add(s.rx_bytes)));
        let each = s
            .peers
            .iter()
            .map(|p| (p.peer.as_str(), None, p.tx_bytes.saturating_add(p.rx_bytes)));
        for (p, name, bytes) in own.into_iter().chain(each) {
            match index.get(p) {
                Some(&i) => {
                    seen[i].2 = seen[i].2.saturating_add(bytes);
                    seen[i].1 = seen[i].1.or(name);
                }
                None => {
                    index.insert(p, seen.len());
                    seen.push((p, name, bytes));
                }
            }
        }
    }
    seen.sort_by_key(|p| std::cmp::Reverse(p.2));
    seen.into_iter().map(|(p, n, _)| peer_text(p, n)).collect()
}

fn peer_list(peers: &[String]) -> String {
    match peers.len() {
        0 => String::new(),
        n if n <= MAX_PEERS => format!(" with {}", peers.join(", ")),
        n => format!(" with {}, +{} more", peers[..MAX_PEERS].join(", "), n - MAX_PEERS),
    }
}

/// The sockets of `p` that count in its totals (inet; Unix too with `--unix`), without those
/// that moved nothing unless `all`.
fn counted(p: &ProcessReport, unix: bool, all: bool) -> Vec<&SocketReport> {
    p.sockets
        .iter()
        .filter(|s| s.counts(unix) && (all || s.moved_anything()))
        .collect()
}

/// The Unix-domain sockets of `p` listed in their own section (without `--unix`).
fn unix_section(p: &ProcessReport, all: bool) -> Vec<&SocketReport> {
    p.sockets
        .iter()
        .filter(|s| s.family() == Family::Unix && (all || s.moved_anything()))
        .collect()
}

/// Whether `p` is shown: it moved something (or `--all`).
fn visible(p: &ProcessReport, unix: bool, all: bool) -> bool {
    all || p.sockets.iter().any(|s| s.moved_anything())
        || !witness_lines(p, &counted(p, unix, true), Units::default()).is_empty()
}

/// The process's first line: pid, name, bytes in and out, connections and peers.
pub fn process_line(p: &ProcessReport, shown: &[&SocketReport], u: Units) -> String {
    format!(
        "sockmeter: pid {} {}: {} in, {} out over {}{}",
        p.pid,
        process_name(p),
        u.bytes(p.totals.rx_bytes),
        u.bytes(p.totals.tx_bytes),
        plural(p.totals.connections, "connection"),
        peer_list(&peers(shown)),
    )
}

/// The process's second line: its command line, how it ended, how long it ran and its
/// average rate (in and out, over its whole life).
pub fn detail_line(p: &ProcessReport, u: Units) -> String {
    let mut how = ending(p);
    if let Some(ms) = units::elapsed_ms(p) {
        how.push_str(&format!(" after {}", units::duration(ms)));
        if let Some(r) = u.rate(p.totals.rx_bytes.saturating_add(p.totals.tx_bytes), ms) {
            how.push_str(&format!(", {r}"));
        }
    }
    format!("  {}  ({how})", command_line(p))
}

fn unseen(s: &SocketReport) -> u64 {
    s.unseen_tx_bytes.saturating_add(s.unseen_rx_bytes)
}

fn peer_cell(s: &SocketReport) -> String {
    match (&s.peer, s.peers.len()) {
        (Some(p), _) => peer_text(p, s.peer_name.as_deref()),
        (None, 0) => "-".into(),
        (None, n) => plural(n as u64, "peer"),
    }
}

/// The table of `sockets` (busiest first, at most [`MAX_ROWS`]), indented, one line each. When
/// any of them moved bytes outside the hooked calls, two columns say how many.
pub fn socket_table(sockets: &[&SocketReport], u: Units, paint: Paint) -> Vec<String> {
    let mut sorted: Vec<&SocketReport> = sockets.to_vec();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.tx_bytes.saturating_add(s.rx_bytes).saturating_add(unseen(s))));
    let shown = &sorted[..sorted.len().min(MAX_ROWS)];
    let mut t = Table::new(["proto", "local", "peer", "role", "in", "out", "module"]);
    for s in shown {
        let local = if s.folded > 0 {
            format!("({} closed sockets)", s.folded)
        } else {
            s.local.clone().unwrap_or_else(|| "-".into())
        };
        let module = s.module.as_deref().map(basename).unwrap_or("-").to_string();
        t.row(vec![
            s.proto.clone(),
            local,
            peer_cell(s),
            if s.origin == "cfsocket" {
                format!("{} (CFSocket)", s.role)
            } else {
                s.role.clone()
            },
            u.bytes(s.rx_bytes),
            u.bytes(s.tx_bytes),
            module,
        ]);
    }
    if shown.iter().any(|s| unseen(s) > 0) {
        t.insert_columns(6, &["unseen in", "unseen out"], |i| {
            vec![u.bytes(shown[i].unseen_rx_bytes), u.bytes(shown[i].unseen_tx_bytes)]
        });
    }
    let mut out = t.lines(paint);
    if sorted.len() > MAX_ROWS {
        let n = (sorted.len() - MAX_ROWS) as u64;
        out.push(format!(
            "  ... and {} (the JSON report has them all)",
            plural(n, "more socket")
        ));
    }
    out
}

/// `X in and Y out`, leaving out a zero side.
fn in_and_out(rx: u64, tx: u64, u: Units) -> String {
    match (rx, tx) {
        (0, tx) => format!("{} out", u.bytes(tx)),
        (rx, 0) => format!("{} in", u.bytes(rx)),
        (rx, tx) => format!("{} in and {} out", u.bytes(rx), u.bytes(tx)),
    }
}

/// Where a socket is, for a sentence: `local -> peer (module)`.
fn place(s: &SocketReport) -> String {
    let module = s.module.as_deref().map(basename).unwrap_or("?");
    format!(
        "{} -> {} ({module})",
        s.local.as_deref().unwrap_or("?"),
        s.peer.as_deref().unwrap_or("?")
    )
}

/// The lines about what the kernel witness saw that the hooks did not, about io_uring, and
/// about TCP connections without a witness, for one process (none when there is nothing to
/// say).
pub fn witness_lines(p: &ProcessReport, counted: &[&SocketReport], u: Units) -> Vec<String> {
    let mut out = Vec::new();
    let who = format!("sockmeter: pid {} {}", p.pid, process_name(p));
    let t = &p.totals;
    if t.unseen_tx_bytes + t.unseen_rx_bytes > 0 {
        let mut where_: Vec<&SocketReport> = counted.iter().copied().filter(|s| unseen(s) > 0).collect();
        where_.sort_by_key(|s| std::cmp::Reverse(unseen(s)));
        let mut places: Vec<String> = where_.iter().take(MAX_PEERS).map(|s| place(s)).collect();
        if where_.len() > MAX_PEERS {
            places.push(format!("+{} more", where_.len() - MAX_PEERS));
        }
        // A process killed by a signal may have died inside a call, or between the kernel's
        // return and the hook's count: that call's bytes are only in the kernel's counts.
        let cut_short = match p.signal {
            Some(sig) => format!("a call signal {sig} cut short, "),
            None => String::new(),
        };
        out.push(format!(
            "{who}: {} moved outside the calls sockmeter sees ({cut_short}stdio, io_uring, raw system calls...; the kernel's TCP counters say so) on {}",
            in_and_out(t.unseen_rx_bytes, t.unseen_tx_bytes, u),
            places.join(", ")
        ));
    }
    if p.uses_io_uring {
        out.push(format!(
            "{who} uses io_uring: its socket I/O is seen only by the kernel witness"
        ));
    }
    let unwitnessed = counted.iter().filter(|s| s.unwitnessed_connection()).count() as u64;
    if unwitnessed > 0 && p.end != "running" {
        out.push(format!(
            "{who}: {} without a kernel witness (still open when the process was killed, kernel TLS, or a kernel before 4.19): what {} moved outside the hooked calls is not known",
            plural(unwitnessed, "TCP connection"),
            if unwitnessed == 1 { "it" } else { "they" }
        ));
    }
    out
}

/// The time of day of an RFC 3339 time (`2026-12-01T22:04:18.288Z` → `22:04:18.288`).
fn time_of_day(t: &str) -> &str {
    t.get(11..23).unwrap_or(t)
}

/// The modules of a process (busiest first), with how and when each came in; empty when the
/// only module is the executable (the table would say nothing the socket table does not), or,
/// without `--all`, when only one moved anything.
pub fn module_table(p: &ProcessReport, opts: &Options) -> Vec<String> {
    if p.modules.iter().all(|m| m.load.as_deref() == Some("executable")) {
        return Vec::new();
    }
    let mut mods: Vec<_> = p
        .modules
        .iter()
        .filter(|m| opts.all || m.stats.tx_bytes > 0 || m.stats.rx_bytes > 0)
        .collect();
    if mods.len() < 2 && !opts.all {
        return Vec::new();
    }
    mods.sort_by_key(|m| std::cmp::Reverse(m.stats.tx_bytes.saturating_add(m.stats.rx_bytes)));
    let u = opts.units;
    let mut t = Table::new(["module", "came in", "loaded at", "in", "out", "connections"]);
    for m in mods.iter().take(MAX_ROWS) {
        t.row(vec![
            basename(&m.module).to_string(),
            m.load.clone().unwrap_or_else(|| "-".into()),
            m.loaded_at.as_deref().map(time_of_day).unwrap_or("-").to_string(),
            u.bytes(m.stats.rx_bytes),
            u.bytes(m.stats.tx_bytes),
            m.stats.connections.to_string(),
        ]);
    }
    t.lines(opts.paint)
}

/// `1 process`, `2 processes`.
fn processes(n: usize) -> String {
    if n == 1 {
        "1 process".into()
    } else {
        format!("{n} processes")
    }
}

fn busiest(p: &ProcessReport) -> u64 {
    p.totals.rx_bytes.saturating_add(p.totals.tx_bytes)
}

/// The summary with the default options, without colour (`listen` and `replay`, which print it
/// through plain stderr).
pub fn render(report: &Report) -> String {
    render_with(report, &Options::default())
}

/// The whole summary with `opts`, one line per `\n`.
pub fn render_with(report: &Report, opts: &Options) -> String {
    let unix = report.unix_in_totals;
    let (u, paint) = (opts.units, opts.paint);
    let mut out: Vec<String> = Vec::new();
    if report.processes.is_empty() {
        out.push(
            "sockmeter: no network traffic: no metered process used a socket (a process appears once it touches one; a static or setuid program cannot be metered)"
                .into(),
        );
    }
    let shown: Vec<&ProcessReport> = report.processes.iter().filter(|p| visible(p, unix, opts.all)).collect();
    let hidden = report.processes.len() - shown.len();
    let by = match opts.group_by {
        Some(b) => b,
        None if shown.len() > AUTO_GROUP => GroupBy::Exe,
        None => GroupBy::Process,
    };
    if by == GroupBy::Process {
        let mut order = shown.clone();
        let mut rest: Vec<&ProcessReport> = Vec::new();
        if let Some(n) = opts.top {
            order.sort_by_key(|p| std::cmp::Reverse(busiest(p)));
            if order.len() > n {
                rest = order.split_off(n);
            }
        }
        for p in order {
            let socks = counted(p, unix, opts.all);
            out.push(paint.bold(&process_line(p, &socks, u)));
            out.push(detail_line(p, u));
            if !socks.is_empty() {
                out.extend(socket_table(&socks, u, paint));
                out.extend(module_table(p, opts));
            }
            out.extend(witness_lines(p, &counted(p, unix, true), u));
        }
        if !rest.is_empty() {
            let (rx, tx, c) = rest.iter().fold((0u64, 0u64, 0u64), |(a, b, c), p| {
                (
                    a.saturating_add(p.totals.rx_bytes),
                    b.saturating_add(p.totals.tx_bytes),
                    c.saturating_add(p.totals.connections),
                )
            });
            out.push(format!(
                "sockmeter: ... and {} more process{}: {} in, {} out over {} (--top {} shows the busiest)",
                rest.len(),
                if rest.len() == 1 { "" } else { "es" },
                u.bytes(rx),
                u.bytes(tx),
                plural(c, "connection"),
                opts.top.unwrap_or(0)
            ));
        }
    } else {
        let what = match by {
            GroupBy::Exe | GroupBy::Process => "executable",
            GroupBy::Module => "module",
            GroupBy::Peer => "peer",
        };
        let hint = if opts.group_by.is_none() {
            " (--group-by process lists each one)"
        } else {
            ""
        };
        out.push(paint.bold(&format!("sockmeter: {}, by {what}{hint}:", processes(shown.len()))));
        out.extend(groups::table(by, &shown, |p| counted(p, unix, opts.all), opts));
        for p in &shown {
            out.extend(witness_lines(p, &counted(p, unix, true), u));
        }
    }
    if !unix {
        out.extend(unix_lines(&shown, by, opts));
    }
    out.extend(process_notices(&report.processes));
    let t = &report.totals;
    let outside = if t.unseen_tx_bytes + t.unseen_rx_bytes > 0 {
        format!(
            "; and {} outside the calls sockmeter sees",
            in_and_out(t.unseen_rx_bytes, t.unseen_tx_bytes, u)
        )
    } else {
        String::new()
    };
    let quiet = match hidden {
        0 => String::new(),
        n => format!(
            " ({n} moved nothing; --all shows {})",
            if n == 1 { "it" } else { "them" }
        ),
    };
    out.push(paint.bold(&format!(
        "sockmeter: total: {} in, {} out over {} in {}{quiet}{outside}",
        u.bytes(t.rx_bytes),
        u.bytes(t.tx_bytes),
        plural(t.connections, "connection"),
        processes(report.processes.len()),
    )));
    let mut s = out.join("\n");
    s.push('\n');
    s.push_str(&warnings(report, opts));
    s
}

/// What `--quiet` still says, and the summary ends with: the run's notices not said yet (a
/// static or setuid program a descendant ran, refused connections...) and the `--attribute`
/// globs that matched nothing. Empty, or lines each ending with `\n`.
pub fn warnings(report: &Report, opts: &Options) -> String {
    let mut out: Vec<String> = report
        .notices
        .iter()
        .filter(|n| !opts.said.contains(n))
        .map(|n| opts.paint.warn(&format!("sockmeter: {n}")))
        .collect();
    out.extend(unmatched_globs(report, &opts.globs, opts.paint));
    out.into_iter().map(|l| l + "\n").collect()
}

/// The Unix-domain section (without `--unix`): per process with its table, or, grouped, one
/// line for all.
fn unix_lines(shown: &[&ProcessReport], by: GroupBy, opts: &Options) -> Vec<String> {
    let u = opts.units;
    let with_unix: Vec<(&ProcessReport, Vec<&SocketReport>)> = shown
        .iter()
        .map(|p| (*p, unix_section(p, opts.all)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if with_unix.is_empty() {
        return Vec::new();
    }
    let head = "sockmeter: Unix-domain sockets (not in the totals; --unix counts them)";
    if by != GroupBy::Process {
        let (rx, tx, n) = with_unix.iter().fold((0u64, 0u64, 0u64), |(a, b, c), (p, s)| {
            (
                a.saturating_add(p.unix.rx_bytes),
                b.saturating_add(p.unix.tx_bytes),
                c + s.len() as u64,
            )
        });
        return vec![format!(
            "{head}: {} in, {} out over {} in {}",
            u.bytes(rx),
            u.bytes(tx),
            plural(n, "socket"),
            processes(with_unix.len())
        )];
    }
    let mut out = vec![format!("{head}:")];
    for (p, socks) in with_unix {
        out.push(format!(
            "sockmeter: pid {} {}: {} in, {} out over {}",
            p.pid,
            process_name(p),
            u.bytes(p.unix.rx_bytes),
            u.bytes(p.unix.tx_bytes),
            plural(socks.len() as u64, "Unix socket")
        ));
        out.extend(socket_table(&socks, u, opts.paint));
    }
    out
}

/// Each distinct notice of the processes, once, with the pids that sent it.
fn process_notices(processes: &[ProcessReport]) -> Vec<String> {
    let mut by_text: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for p in processes {
        for n in &p.notices {
            let pids = by_text.entry(n).or_insert_with(|| {
                order.push(n);
                Vec::new()
            });
            pids.push(p.pid);
        }
    }
    order
        .into_iter()
        .map(|n| {
            let pids = &by_text[n];
            let who = match pids.len() {
                1 => format!("pid {}", pids[0]),
                k if k <= 3 => format!(
                    "pids {}",
                    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                ),
                k => format!(
                    "pids {} and {} more",
                    pids[..3].iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                    k - 3
                ),
            };
            format!("sockmeter: {who}: {n}")
        })
        .collect()
}

/// The `--attribute` globs that matched no object in any process that reported.
fn unmatched_globs(report: &Report, globs: &[String], paint: Paint) -> Vec<String> {
    if report.processes.is_empty() {
        return Vec::new();
    }
    globs
        .iter()
        .filter(|g| !report.processes.iter().any(|p| p.attribute_matched.contains(g)))
        .map(|g| {
            paint.warn(&format!(
                "sockmeter: --attribute '{g}' matched no object in any metered process (a glob without `/` matches file names, one with `/` whole paths; `*` crosses `/`)"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
