//! The lines a pass is made of (`socket`, `delta`, `closed`), written by hand: byte for byte
//! what serde_json writes for them (`props.rs` draws every kind of message and compares the two
//! lines), without its per-field work. serde_json escapes each field name of each line as it
//! writes it, which was a third of a shipper's cost per short connection (~4,500 of ~15,600
//! instructions under callgrind; docs/benchmarks.md). Every other message, and any string that
//! needs escaping, still goes through serde_json.

use super::{Delta, Message, SocketDelta, SocketInfo, LINE_HEAD};

/// Appends `msg`'s line (with its newline) to `out` when it is one of the three; false, with
/// nothing appended, for any other message.
pub(super) fn encode_into(msg: &Message, out: &mut Vec<u8>) -> bool {
    match msg {
        Message::Socket(s) => {
            head(out, "socket");
            socket(s, out);
        }
        Message::Delta(d) => {
            head(out, "delta");
            delta(d, out);
        }
        Message::Closed(c) => {
            head(out, "closed");
            numbers(out, &[("id", c.id), ("closed_at", c.closed_at)]);
        }
        _ => return false,
    }
    out.extend_from_slice(b"}\n");
    true
}

/// `{"v":1,"type":"<kind>"`, the start of every line.
fn head(out: &mut Vec<u8>, kind: &str) {
    out.extend_from_slice(LINE_HEAD);
    out.extend_from_slice(b"\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
}

/// `,"name":` (every field here follows another).
fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn number(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// `,"a":1,"b":2...`: number fields in a row.
fn numbers(out: &mut Vec<u8>, fields: &[(&str, u64)]) {
    for &(name, v) in fields {
        key(out, name);
        number(out, v);
    }
}

fn boolean(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// A JSON string: as is when nothing in it needs escaping (addresses, paths, names), else as
/// serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing to a Vec cannot fail; an empty string keeps the line valid if it ever did.
        out.extend_from_slice(b"\"\"");
    }
}

fn optional_text(out: &mut Vec<u8>, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        key(out, name);
        string(out, v);
    }
}

fn optional_number(out: &mut Vec<u8>, name: &str, v: Option<u64>) {
    if let Some(v) = v {
        key(out, name);
        number(out, v);
    }
}

fn socket(s: &SocketInfo, out: &mut Vec<u8>) {
    key(out, "id");
    number(out, s.id);
    key(out, "fd");
    number(out, s.fd);
    key(out, "family");
    string(out, s.family.as_str());
    key(out, "proto");
    string(out, s.proto.as_str());
    key(out, "role");
    string(out, s.role.as_str());
    optional_text(out, "local", &s.local);
    optional_text(out, "peer", &s.peer);
    optional_text(out, "peer_name", &s.peer_name);
    optional_text(out, "module", &s.module);
    optional_text(out, "via", &s.via);
    optional_text(out, "label", &s.label);
    key(out, "opened_at");
    number(out, s.opened_at);
    key(out, "inherited");
    boolean(out, s.inherited);
    key(out, "adopted");
    boolean(out, s.adopted);
    key(out, "origin");
    string(out, s.origin.as_str());
    optional_number(out, "closed_at", s.closed_at);
    if let Some(c) = &s.counts {
        key(out, "counts");
        socket_delta(c, out);
    }
    optional_number(out, "kernel_tx_bytes", s.kernel_tx_bytes);
    optional_number(out, "kernel_rx_bytes", s.kernel_rx_bytes);
    if s.kernel_base_tx_bytes != 0 {
        numbers(out, &[("kernel_base_tx_bytes", s.kernel_base_tx_bytes)]);
    }
    if s.kernel_base_rx_bytes != 0 {
        numbers(out, &[("kernel_base_rx_bytes", s.kernel_base_rx_bytes)]);
    }
    if s.shared {
        key(out, "shared");
        boolean(out, true);
    }
}

fn socket_delta(d: &SocketDelta, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    number(out, d.id);
    counters(out, [d.tx_bytes, d.rx_bytes, d.tx_calls, d.rx_calls]);
    numbers(out, &[("errors", d.errors)]);
    if d.connections != 0 {
        numbers(out, &[("connections", d.connections)]);
    }
    if !d.peers.is_empty() {
        key(out, "peers");
        out.push(b'[');
        for (i, p) in d.peers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"peer\":");
            string(out, &p.peer);
            counters(out, [p.tx_bytes, p.rx_bytes, p.tx_calls, p.rx_calls]);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// The four counters a socket's and a peer's delta both carry, in the wire's order.
fn counters(out: &mut Vec<u8>, [tx_bytes, rx_bytes, tx_calls, rx_calls]: [u64; 4]) {
    numbers(
        out,
        &[
            ("tx_bytes", tx_bytes),
            ("rx_bytes", rx_bytes),
            ("tx_calls", tx_calls),
            ("rx_calls", rx_calls),
        ],
    );
}

fn delta(d: &Delta, out: &mut Vec<u8>) {
    key(out, "at");
    number(out, d.at);
    key(out, "sockets");
    out.push(b'[');
    for (i, s) in d.sockets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        socket_delta(s, out);
    }
    out.push(b']');
}
