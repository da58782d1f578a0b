//! The JSON report (`sockmeter.report.v1`): what `sockmeter run --json` writes, what
//! `SOCKMETER_REPORT` writes per process, and what the embedding API's snapshot returns (one
//! [`ProcessReport`]). Other tools rely on these field names; add fields, never rename them.

use serde::{Deserialize, Serialize};

use crate::model::{Family, Role};

/// The schema name in every report.
pub const REPORT_SCHEMA: &str = "sockmeter.report.v1";

/// The whole report of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The command that was run (empty for a single process's own report).
    pub command: Vec<String>,
    /// Its exit status (128+N for a signal); null when unknown.
    pub exit_status: Option<i32>,
    /// Whether Unix-domain traffic is included in the totals.
    #[serde(default)]
    pub unix_in_totals: bool,
    /// Sums over every process.
    pub totals: Totals,
    /// One entry per process image (a process that execs appears once per image).
    pub processes: Vec<ProcessReport>,
    /// Things the user should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// Run-wide totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Connected and accepted sockets.
    pub connections: u64,
    /// Bytes sent outside the calls sockmeter sees: what the kernel witness counted beyond
    /// `tx_bytes` (TCP; absent when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_tx_bytes: u64,
    /// Bytes received outside the calls sockmeter sees (as `unseen_tx_bytes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_rx_bytes: u64,
}

/// One process (one image of it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Executable.
    pub exe: String,
    /// Command line.
    pub argv: Vec<String>,
    /// `start` or `fork`.
    pub origin: String,
    /// When metering started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339); null while running or if it vanished without a word.
    pub ended_at: Option<String>,
    /// `exit` (it exited), `signal` (a signal killed it), `exec` (it replaced itself), `running`
    /// (still running when the report was made), or `lost`: the stream ended without a goodbye
    /// and nobody saw how it ended (a broken connection). A killed process still has its last
    /// counts: its shipper (or, reporting from its own thread, its fatal-signal handler) ships
    /// them.
    pub end: String,
    /// The exit code, when it exited and the reporter learnt the code (from reaping it, from
    /// its parent's `wait`, or from `_exit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did and the reporter learnt it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// This process's totals (inet, plus Unix when the report includes it).
    pub totals: ProcessTotals,
    /// Every socket.
    pub sockets: Vec<SocketReport>,
    /// Traffic per module (the object charged for each socket).
    pub modules: Vec<ModuleReport>,
    /// Traffic per label (only labelled sockets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelReport>,
    /// Unix-domain traffic (never in `totals` unless the report includes it).
    pub unix: UnixTotals,
    /// Events the hooks could not queue (counts unaffected).
    #[serde(default)]
    pub dropped_events: u64,
    /// Things the user should know about this process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// The process created an io_uring: its socket I/O through the ring is seen only by the
    /// kernel witness (TCP, as `unseen_*_bytes`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub uses_io_uring: bool,
    /// The `--attribute` / `SOCKMETER_ATTRIBUTE` globs that matched an object this process
    /// looked at when it attributed a socket (absent when none did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_matched: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ProcessReport {
    /// Records how the process ended, learnt outside its own stream (the reporter reaped it, or
    /// its parent did: the kernel's wait status), `at` ms since the epoch. It overrides what
    /// the process said of itself: the exit code the shim records at `exit()` is not the end
    /// when an exit handler that runs after the shim's then kills the process or calls
    /// `_exit` with another code. An image that exec'd is left as it is.
    pub fn ended_with(&mut self, status: crate::wire::ExitStatus, at: u64) {
        if self.end == "exec" {
            return;
        }
        self.exit_code = status.exit_code;
        self.signal = status.signal;
        self.end = if status.signal.is_some() { "signal" } else { "exit" }.into();
        if self.ended_at.is_none() {
            self.ended_at = Some(crate::time::rfc3339(at));
        }
    }
}

/// A process's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTotals {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Send calls.
    pub tx_calls: u64,
    /// Receive calls.
    pub rx_calls: u64,
    /// Failed calls.
    pub errors: u64,
    /// Connected and accepted sockets.
    pub connections: u64,
    /// Sockets of any role.
    pub sockets: u64,
    /// Bytes sent outside the calls sockmeter sees: what the kernel witness counted beyond
    /// `tx_bytes` (TCP; absent when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_tx_bytes: u64,
    /// Bytes received outside the calls sockmeter sees (as `unseen_tx_bytes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_rx_bytes: u64,
}

/// Unix-domain traffic of a process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixTotals {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Unix sockets seen.
    pub sockets: u64,
}

/// One socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketReport {
    /// Socket id (unique within the process image).
    pub id: u64,
    /// The fd it was first seen on.
    pub fd: i32,
    /// `inet`, `inet6`, `unix`, `other`.
    pub family: String,
    /// `tcp`, `udp`, `stream`, `dgram`, ...
    pub proto: String,
    /// `connected`, `accepted`, `listening`, `datagram`, `unconnected`, `overflow`.
    pub role: String,
    /// Local address.
    pub local: Option<String>,
    /// Peer address.
    pub peer: Option<String>,
    /// The name the program looked up to get the peer's address (`getaddrinfo`,
    /// `gethostbyname`...), as it asked for it (`example.org`); absent when it connected to an
    /// address it did not look up. No reverse lookup is ever made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Send calls.
    pub tx_calls: u64,
    /// Receive calls.
    pub rx_calls: u64,
    /// Failed calls (EAGAIN is not a failure).
    pub errors: u64,
    /// The module charged for this socket.
    pub module: Option<String>,
    /// The object that made the call, when it is not the module (e.g. libcurl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The host's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Open time (RFC 3339).
    pub opened_at: String,
    /// Close time (RFC 3339); null while open.
    pub closed_at: Option<String>,
    /// Existed before this process image.
    #[serde(default)]
    pub inherited: bool,
    /// Recognised on first use.
    #[serde(default)]
    pub adopted: bool,
    /// `bsd` (the BSD socket calls) or `cfsocket` (CoreFoundation's CFSocket).
    #[serde(default)]
    pub origin: String,
    /// Per-peer counts of a datagram socket (first few peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerReport>,
    /// When not zero, this entry stands for that many closed sockets folded together (a
    /// long-running process); `id` and `fd` are then 0 and `local` is null.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folded: u64,
    /// The kernel witness (TCP): the data bytes the kernel says the program wrote to this
    /// socket, by any path, since sockmeter began counting it (read at its close, or at the
    /// process's exit or exec). Absent when it could not be read: not TCP, still open, open
    /// across a fork, or the process was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_tx_bytes: Option<u64>,
    /// The same for the data bytes the program read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_rx_bytes: Option<u64>,
    /// Bytes sent outside the calls sockmeter sees: what the kernel witness counted beyond
    /// `tx_bytes` (TCP; absent when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_tx_bytes: u64,
    /// Bytes received outside the calls sockmeter sees (as `unseen_tx_bytes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_rx_bytes: u64,
    /// The kernel's count of written bytes when this process began counting the socket (the
    /// fork, for one a forked child inherited; its first use, for one recognised then): the
    /// witness counts from there. Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_base_tx_bytes: u64,
    /// The same for the bytes read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kernel_base_rx_bytes: u64,
    /// The socket was open in another process too (across a fork, in the parent or the
    /// child). The kernel's counts are then every holder's together: what no hook saw is
    /// worked out over all the run's holders of the connection and charged to one of them
    /// ([`crate::holders`]); in a process's own report (`SOCKMETER_REPORT`, a snapshot), which
    /// has no other holder to weigh, it is not worked out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared: bool,
    /// A socket with no witness of its own that another holder's witness covers (the pid of
    /// one such process): a program that got the socket from this run's other processes and
    /// was killed by SIGKILL, say. Its counted bytes are weighed
    /// in that holder's reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed_by: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-peer counts of a datagram socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerReport {
    /// The peer.
    pub peer: String,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Calls sending to it.
    pub tx_calls: u64,
    /// Calls receiving from it.
    pub rx_calls: u64,
}

/// Traffic charged to one module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleReport {
    /// The module's absolute path (`(unknown)` when it could not be found).
    pub module: String,
    /// How it came into the process: `executable`, `linked`, `preloaded`, `dlopen` (a plugin)
    /// or `dependency` (loaded at run time, not named in a dlopen call of the program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<String>,
    /// When it was loaded (RFC 3339): the dlopen call for a plugin, the image's start for
    /// objects loaded at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// Its traffic.
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// Traffic of the sockets opened under one label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelReport {
    /// The label.
    pub label: String,
    /// Its traffic.
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// Traffic of a group of sockets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Send calls.
    pub tx_calls: u64,
    /// Receive calls.
    pub rx_calls: u64,
    /// Connected and accepted sockets.
    pub connections: u64,
    /// Sockets of any role.
    pub sockets: u64,
    /// Distinct peers.
    pub peers: Vec<String>,
    /// Bytes sent outside the calls sockmeter sees: what the kernel witness counted beyond
    /// `tx_bytes` (TCP; absent when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_tx_bytes: u64,
    /// Bytes received outside the calls sockmeter sees (as `unseen_tx_bytes`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_rx_bytes: u64,
}

impl SocketReport {
    /// Sets the kernel witness's (written, read) numbers and what they say the hooks did not
    /// see: the kernel's count beyond the hooks', never negative. (A hook count above the
    /// kernel's would be a sockmeter bug; the tests check that it never happens.)
    pub fn set_witness(&mut self, kernel: Option<[u64; 2]>) {
        self.kernel_tx_bytes = kernel.map(|k| k[0]);
        self.kernel_rx_bytes = kernel.map(|k| k[1]);
        let [tx, rx] = kernel.unwrap_or([0, 0]);
        // A shared socket's numbers include the other holders' bytes: see `shared`.
        let own = !self.shared;
        self.unseen_tx_bytes = if own { tx.saturating_sub(self.tx_bytes) } else { 0 };
        self.unseen_rx_bytes = if own { rx.saturating_sub(self.rx_bytes) } else { 0 };
    }

    /// Whether this is a TCP connection (connected or accepted) that has no kernel witness.
    pub fn unwitnessed_connection(&self) -> bool {
        self.proto == crate::model::Proto::Tcp.as_str()
            && self.is_connection()
            && self.folded == 0
            && self.kernel_tx_bytes.is_none()
            && self.witnessed_by.is_none()
    }

    /// Whether this socket counts in totals: inet always, Unix only when asked.
    pub fn counts(&self, include_unix: bool) -> bool {
        match self.family() {
            f if f.is_inet() => true,
            Family::Unix => include_unix,
            _ => self.role == Role::Overflow.as_str(),
        }
    }
    /// Connected or accepted, and not one end of a socketpair (a pipe between two fds of the
    /// program, not a connection to anyone).
    pub fn is_connection(&self) -> bool {
        (self.role == Role::Connected.as_str() || self.role == Role::Accepted.as_str()) && !self.is_socketpair()
    }

    /// One end of a Unix-domain socketpair: connected to a peer with no name (a socket can
    /// only connect to a named one; folded groups of them have no local address).
    pub fn is_socketpair(&self) -> bool {
        self.family() == Family::Unix
            && self.role == Role::Connected.as_str()
            && self.peer.as_deref() == Some("(unnamed)")
    }

    /// Whether this socket moved anything: bytes (seen by the hooks or only by the kernel
    /// witness) or failed calls.
    pub fn moved_anything(&self) -> bool {
        self.tx_bytes > 0
            || self.rx_bytes > 0
            || self.unseen_tx_bytes > 0
            || self.unseen_rx_bytes > 0
            || self.errors > 0
    }
    /// The family as a typed value.
    pub fn family(&self) -> Family {
        match self.family.as_str() {
            "inet" => Family::Inet,
            "inet6" => Family::Inet6,
            "unix" => Family::Unix,
            _ => Family::Other,
        }
    }
}

impl Report {
    /// Builds a run report from finished process reports, computing the totals.
    pub fn new(
        command: Vec<String>,
        exit_status: Option<i32>,
        unix_in_totals: bool,
        processes: Vec<ProcessReport>,
    ) -> Report {
        let mut totals = Totals::default();
        // Saturating: each process's totals are bounded, their sum over hostile processes need
        // not be, and a report must never panic or wrap.
        for p in &processes {
            totals.tx_bytes = totals.tx_bytes.saturating_add(p.totals.tx_bytes);
            totals.rx_bytes = totals.rx_bytes.saturating_add(p.totals.rx_bytes);
            totals.connections = totals.connections.saturating_add(p.totals.connections);
            totals.unseen_tx_bytes = totals.unseen_tx_bytes.saturating_add(p.totals.unseen_tx_bytes);
            totals.unseen_rx_bytes = totals.unseen_rx_bytes.saturating_add(p.totals.unseen_rx_bytes);
        }
        Report {
            schema: REPORT_SCHEMA.to_string(),
            command,
            exit_status,
            unix_in_totals,
            totals,
            processes,
            notices: Vec::new(),
        }
    }
}
