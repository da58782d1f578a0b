//! End-to-end tests: real programs (curl, python3, C programs compiled here, a shell pipeline)
//! run under `sockmeter run`, against oracle peers that are not metered. Every assertion on a
//! byte count compares with what the other end really received and sent.
//!
//! Needs the workspace built first (`cargo build --workspace`; `scripts/test` does it).

mod attribution;
mod badconfig;
mod cfsocket;
mod cprogs;
mod faults;
mod harness;
mod hosts;
mod hygiene;
mod install;
mod invisible;
mod listen;
mod live;
mod loading;
mod names;
mod net;
mod nursery;
mod origins;
mod overhead;
mod plugins;
mod preload;
mod prometheus;
mod reporters;
mod security;
mod shared;
mod silentzero;
mod stream;
mod summary;
mod torture;
