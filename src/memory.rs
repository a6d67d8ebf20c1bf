//! The memory ledger: one budget for everything that grows with the input.
//!
//! Every allocation whose size depends on what the capture holds — out-of-order segments,
//! bytes kept to check retransmissions, compression history, HTTP heads being parsed,
//! resynchronisation hunts, unfinished messages, and each connection's own fixed state — is
//! charged here before it is made and refunded when it is freed. The ledger is handed *down*
//! to the layers with each call; no decoder calls back up for memory.
//!
//! When a charge does not fit, the caller gives something up and says so in an event: the
//! reassembler declares a gap, a message is kept truncated, a hunt starts over, a
//! connection's compression history or the connection itself is dropped. What was given up
//! is counted per pool ([`Memory::refused`]).

use std::fmt;

/// What a charge is for. Pools share one limit; they exist to report where memory went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pool {
    /// Each tracked connection's fixed state (table entry, stream and decoder state).
    Connections,
    /// Out-of-order TCP segments waiting for the bytes before them.
    Reorder,
    /// Delivered bytes not yet acknowledged, kept to compare with retransmissions.
    Retransmit,
    /// permessage-deflate history (the sender's window) of context-takeover streams.
    Compression,
    /// HTTP heads not yet complete, and client bytes held until the server answers an upgrade.
    Http,
    /// Bytes kept while hunting for a websocket frame boundary.
    Hunt,
    /// Payload of unfinished websocket messages.
    Messages,
    /// State kept by annotators and printers that grows with the input.
    Views,
    /// TLS decryption: records waiting for their last bytes, handshake messages in
    /// pieces, each direction's keys, the plaintext of the record being read.
    Tls,
    /// Live capture's queue: packets read from the kernel, waiting to be decoded, charged as
    /// its chunks are allocated (they are, up to three quarters of what decoding does not use).
    Capture,
}

impl Pool {
    /// Every pool, in reporting order.
    pub const ALL: [Pool; 10] = [
        Pool::Connections,
        Pool::Reorder,
        Pool::Retransmit,
        Pool::Compression,
        Pool::Http,
        Pool::Hunt,
        Pool::Messages,
        Pool::Views,
        Pool::Tls,
        Pool::Capture,
    ];

    /// The pool's name in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Connections => "connections",
            Pool::Reorder => "reorder",
            Pool::Retransmit => "retransmit",
            Pool::Compression => "compression",
            Pool::Http => "http",
            Pool::Hunt => "hunt",
            Pool::Messages => "messages",
            Pool::Views => "views",
            Pool::Tls => "tls",
            Pool::Capture => "capture",
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Buffers kept for reuse, and the largest kept: growing a fresh buffer message after
/// message costs a copy at every doubling, but what the pool holds stays small (1 MiB).
const POOL_BUFFERS: usize = 4;
const POOL_BUFFER_MAX: usize = 256 << 10;

/// The ledger. Its fields are private: memory is only ever charged and refunded.
#[derive(Debug)]
pub struct Memory {
    limit: usize,
    used: [usize; Pool::ALL.len()],
    total: usize,
    peak: usize,
    refused: [u64; Pool::ALL.len()],
    /// Message buffers kept for reuse (not charged: their contents are, while in use).
    spare: Vec<Vec<u8>>,
}

impl Memory {
    /// A ledger that grants at most `limit` bytes in all.
    pub fn new(limit: usize) -> Self {
        Memory {
            limit,
            used: [0; Pool::ALL.len()],
            total: 0,
            peak: 0,
            refused: [0; Pool::ALL.len()],
            spare: Vec::new(),
        }
    }

    /// The limit this ledger grants up to.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now, in all pools.
    pub fn used(&self) -> usize {
        self.total
    }

    /// Bytes charged now to `pool`.
    pub fn used_by(&self, pool: Pool) -> usize {
        self.used[pool as usize]
    }

    /// The most that was ever charged at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// How many charges to `pool` were refused (in whole or in part).
    pub fn refused(&self, pool: Pool) -> u64 {
        self.refused[pool as usize]
    }

    /// Bytes that can still be granted.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.total)
    }

    /// Charges `n` bytes to `pool` if all of them fit; false (and nothing charged) otherwise.
    #[must_use]
    pub fn charge(&mut self, pool: Pool, n: usize) -> bool {
        if n > self.available() {
            self.refused[pool as usize] += 1;
            return false;
        }
        self.add(pool, n);
        true
    }

    /// Charges as much of `n` as fits; returns what was granted.
    pub fn grant(&mut self, pool: Pool, n: usize) -> usize {
        let g = n.min(self.available());
        if g < n {
            self.refused[pool as usize] += 1;
        }
        self.add(pool, g);
        g
    }

    /// Charges `n` bytes whatever the limit: for state that must exist for decoding to go on
    /// at all and is bounded by a small constant (a connection's fixed state while the table
    /// makes room by evicting). Callers then give something up until the ledger is within its
    /// limit again.
    pub fn force(&mut self, pool: Pool, n: usize) {
        self.add(pool, n);
    }

    fn add(&mut self, pool: Pool, n: usize) {
        self.used[pool as usize] += n;
        self.total += n;
        self.peak = self.peak.max(self.total);
    }

    /// Whether more is charged than the limit (after [`Memory::force`]).
    pub fn over(&self) -> bool {
        self.total > self.limit
    }

    /// Gives back `n` bytes charged to `pool`.
    pub fn refund(&mut self, pool: Pool, n: usize) {
        let u = &mut self.used[pool as usize];
        debug_assert!(*u >= n, "refund of {n} to {pool} holding {u}");
        let n = n.min(*u);
        *u -= n;
        self.total -= n;
    }

    /// Moves the charge for a buffer whose capacity changed from `before` to `after` bytes.
    /// Returns false (nothing changed) when the growth does not fit.
    #[must_use]
    pub fn resize(&mut self, pool: Pool, before: usize, after: usize) -> bool {
        if after >= before {
            self.charge(pool, after - before)
        } else {
            self.refund(pool, before - after);
            true
        }
    }

    /// An empty buffer for a message's payload, perhaps with room left by an earlier one.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Takes a finished message's buffer back for [`Memory::buffer`].
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= POOL_BUFFER_MAX && self.spare.len() < POOL_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

impl Default for Memory {
    /// Unlimited: for tests and tools that decode trusted input.
    fn default() -> Self {
        Memory::new(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_refunds_and_refusals_balance() {
        let mut m = Memory::new(100);
        assert!(m.charge(Pool::Reorder, 60));
        assert!(!m.charge(Pool::Messages, 41), "does not fit");
        assert_eq!(m.used(), 60, "a refused charge leaves the ledger unchanged");
        assert_eq!(m.grant(Pool::Messages, 50), 40);
        assert_eq!(m.refused(Pool::Messages), 2);
        assert_eq!(m.available(), 0);
        m.refund(Pool::Reorder, 60);
        m.refund(Pool::Messages, 40);
        assert_eq!((m.used(), m.peak()), (0, 100));
        m.force(Pool::Connections, 150);
        assert!(m.over());
        m.refund(Pool::Connections, 150);
        assert!(!m.over());
    }

    #[test]
    fn resize_charges_only_growth() {
        let mut m = Memory::new(10);
        assert!(m.resize(Pool::Hunt, 0, 8));
        assert!(!m.resize(Pool::Hunt, 8, 20));
        assert_eq!(m.used_by(Pool::Hunt), 8);
        assert!(m.resize(Pool::Hunt, 8, 2));
        assert_eq!(m.used_by(Pool::Hunt), 2);
    }
}
