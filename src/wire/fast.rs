//! The lines a pass is made of (`socket`, `delta`, `closed`), written by hand: byte for byte
//! what serde_json writes for them (`props.rs` draws every kind of message and compares the two
//! lines), without its per-field work. serde_json escapes each field name of each line as it
//! writes it, which was a third of a shipper's cost per short connection (~4,500 of ~15,600
//! instructions under callgrind; docs/benchmarks.md). Every other message, and any string that
//! needs escaping, still goes through serde_json.

use super::{Closed, Delta, Message, PeerDelta, SocketDelta, SocketInfo, LINE_HEAD};

/// Appends `msg`'s line (with its newline) to `out` when it is one of the three; false, with
/// nothing appended, for any other message.
pub(super) fn encode_into(msg: &Message, out: &mut Vec<u8>) -> bool {
    let kind: &[u8] = match msg {
        Message::Socket(_) => b"socket",
        Message::Delta(_) => b"delta",
        Message::Closed(_) => b"closed",
        _ => return false,
    };
    out.extend_from_slice(LINE_HEAD);
    out.extend_from_slice(b"\"type\":\"");
    out.extend_from_slice(kind);
    out.push(b'"');
    match msg {
        Message::Socket(s) => socket(s, out),
        Message::Delta(d) => delta(d, out),
        Message::Closed(c) => closed(c, out),
        _ => unreachable!("matched above"),
    }
    out.extend_from_slice(b"}\n");
    true
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
        key(out, "kernel_base_tx_bytes");
        number(out, s.kernel_base_tx_bytes);
    }
    if s.kernel_base_rx_bytes != 0 {
        key(out, "kernel_base_rx_bytes");
        number(out, s.kernel_base_rx_bytes);
    }
    if s.shared {
        key(out, "shared");
        boolean(out, true);
    }
}

fn socket_delta(d: &SocketDelta, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    number(out, d.id);
    key(out, "tx_bytes");
    number(out, d.tx_bytes);
    key(out, "rx_bytes");
    number(out, d.rx_bytes);
    key(out, "tx_calls");
    number(out, d.tx_calls);
    key(out, "rx_calls");
    number(out, d.rx_calls);
    key(out, "errors");
    number(out, d.errors);
    if d.connections != 0 {
        key(out, "connections");
        number(out, d.connections);
    }
    if !d.peers.is_empty() {
        key(out, "peers");
        out.push(b'[');
        for (i, p) in d.peers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            peer_delta(p, out);
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn peer_delta(p: &PeerDelta, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"peer\":");
    string(out, &p.peer);
    key(out, "tx_bytes");
    number(out, p.tx_bytes);
    key(out, "rx_bytes");
    number(out, p.rx_bytes);
    key(out, "tx_calls");
    number(out, p.tx_calls);
    key(out, "rx_calls");
    number(out, p.rx_calls);
    out.push(b'}');
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

fn closed(c: &Closed, out: &mut Vec<u8>) {
    key(out, "id");
    number(out, c.id);
    key(out, "closed_at");
    number(out, c.closed_at);
}
