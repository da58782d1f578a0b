//! # sockmeter
//!
//! Exact network byte accounting inside a process, without root. This crate is the core:
//! the accounting model the hooks write into ([`registry`]), the wire protocol between a
//! metered process and a reporter ([`wire`]), the JSON report ([`report`]) and the one place
//! where wire messages become a report ([`account`]), and the Rust embedding API ([`embed`]:
//! `sockmeter::embed::start()`, `Meter::snapshot()`, `Meter::subscribe()`,
//! `sockmeter::label("weather", || ...)`). It has no hooks; the preloadable shim (`shim/`) and
//! the `sockmeter` command (`reporter/`) are built on it.

pub mod account;
pub mod addr;
pub mod collect;
pub mod config;
pub mod embed;
pub mod glob;
pub mod holders;
pub mod hostnames;
pub mod keep;
pub mod model;
pub mod names;
pub mod nursery;
pub mod outbox;
pub mod preload;
pub mod registry;
pub mod report;
pub mod safe_open;
pub mod shared;
pub mod time;
pub mod wire;
pub mod witness;

pub use account::ProcessAccount;
pub use addr::Addr;
pub use embed::{label, EmbedError, Meter};
pub use model::{Dir, Family, Load, Proto, Role, SocketOrigin};
pub use report::{ProcessReport, Report, SocketReport};
