//! permessage-deflate (RFC 7692): raw DEFLATE, each message ending with the `00 00 ff ff` the
//! sender stripped.
//!
//! A context-takeover stream needs only one thing between messages: the sender's last
//! window of output (at most 2^window_bits bytes), which a fresh raw inflater accepts as its
//! dictionary. So a direction keeps a [`Window`] — for chat traffic a few hundred bytes — and an
//! [`Inflater`], with zlib's 40-odd KiB of state, exists only while a compressed message is
//! being inflated. Idle connections keep no inflater.
//!
//! zlib (here through the pure-Rust zlib-rs backend) refuses a back-reference to bytes it never
//! produced or was given ("invalid distance too far back"). That check is what lets a capture
//! that starts mid-conversation, or lost a message, say "cannot inflate" instead of printing
//! garbage: the window is emptied at every point where history went missing.

use flate2::{Decompress, FlushDecompress, Status};
use std::cell::RefCell;
use std::collections::VecDeque;

const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflaters kept for reuse by the next message on this thread (a fixed cost, not growing with
/// the input: reinitialising zlib for every message is measurable).
const SPARE: usize = 4;

thread_local! {
    static SPARES: RefCell<Vec<Inflater>> = const { RefCell::new(Vec::new()) };
}

/// The last output of a context-takeover sender, what its next message may refer back to.
#[derive(Debug, Default)]
pub struct Window {
    bytes: Vec<u8>,
}

impl Window {
    /// Bytes held (its capacity: what the memory ledger is charged).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Bytes of history held (at most the `max` it was last extended with).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// No history: a message inflated from it can refer to nothing before itself.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Forgets everything (and frees it).
    pub fn clear(&mut self) {
        self.bytes = Vec::new();
    }

    /// What the window would hold after a message whose output is `parts` concatenated, with
    /// a window of `max` bytes: the last `max` bytes of the old window followed by the output.
    /// Returns the capacity it would need, so the caller can charge it first.
    pub fn needed_after(&self, parts: &[&[u8]], max: usize) -> usize {
        let add: usize = parts.iter().map(|p| p.len()).sum();
        (self.bytes.len() + add).min(max)
    }

    /// Appends a message's output (`parts`, in order), keeping the last `max` bytes.
    pub fn extend(&mut self, parts: &[&[u8]], max: usize) {
        let add: usize = parts.iter().map(|p| p.len()).sum();
        let total = self.bytes.len() + add;
        if total > max {
            let mut drop = total - max;
            let from_old = drop.min(self.bytes.len());
            self.bytes.drain(..from_old);
            drop -= from_old;
            for p in parts {
                let skip = drop.min(p.len());
                drop -= skip;
                self.bytes.extend_from_slice(&p[skip..]);
            }
        } else {
            for p in parts {
                self.bytes.extend_from_slice(p);
            }
        }
        // Never hold more capacity than the window (a vector doubles past what is needed).
        if self.bytes.capacity() > max.max(self.bytes.len()) {
            self.bytes.shrink_to(max);
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
}

/// A raw-DEFLATE inflater for one message at a time (the module documentation says why it
/// does not outlive the message): [`Inflater::start`] takes one from a per-thread spare list
/// and [`Inflater::done`] puts it back.
pub struct Inflater {
    z: Decompress,
    discard: Vec<u8>,
    /// The newest output that went to `discard` (past what the message keeps), up to
    /// `tail_max` bytes: the window needs it.
    tail: VecDeque<u8>,
    tail_max: usize,
    /// Output bytes that went to `discard` this message.
    discarded: u64,
}

/// Why a message could not be inflated to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Corrupt data, or a reference to history the capture lacks.
    Data(String),
    /// The message inflated past the hard limit.
    Limit,
}

/// Where inflated bytes go: kept up to `keep`, counted beyond.
pub struct Output<'a> {
    /// The message body: inflated bytes are appended here.
    pub buf: &'a mut Vec<u8>,
    /// Most bytes `buf` may hold (a length of `buf`, counting what it held before): output
    /// past it is inflated, so that the stream stays in step and its size is known, but not kept.
    pub keep: usize,
    /// Bytes produced for this message so far (kept or not).
    pub produced: u64,
    /// Most bytes a message may inflate to: past it inflating stops with
    /// [`InflateError::Limit`], so a decompression bomb costs bounded time.
    pub hard_limit: u64,
}

impl Inflater {
    /// An inflater for one message, starting from `window` (`None`: an empty window, for a
    /// sender without context takeover or whose history is lost). `tail_max` is the sender's
    /// window size: how much output beyond what the message keeps must be remembered.
    pub fn start(window: Option<&Window>, tail_max: usize) -> Box<Inflater> {
        let mut inf = SPARES
            .with(|s| s.borrow_mut().pop())
            .map(Box::new)
            .unwrap_or_else(|| {
                Box::new(Inflater {
                    z: Decompress::new(false),
                    discard: Vec::new(),
                    tail: VecDeque::new(),
                    tail_max,
                    discarded: 0,
                })
            });
        inf.z.reset(false);
        inf.tail.clear();
        inf.tail_max = tail_max;
        inf.discarded = 0;
        if let Some(w) = window
            && !w.is_empty()
        {
            // A raw inflater accepts a dictionary at any point; right after a reset it is
            // exactly the window the sender's compressor had.
            let _ = inf.z.set_dictionary(w.as_slice());
        }
        inf
    }

    /// Gives the inflater back for the next message on this thread.
    pub fn done(mut self: Box<Self>) {
        self.tail = VecDeque::new();
        self.discard = Vec::new();
        SPARES.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE {
                s.push(*self);
            }
        });
    }

    /// Output that went past what the message kept, newest `tail_max` bytes, in order.
    pub fn tail(&self) -> (&[u8], &[u8]) {
        self.tail.as_slices()
    }

    /// Output bytes of this message that were not kept.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Feeds compressed bytes of the current message.
    pub fn feed(&mut self, input: &[u8], out: &mut Output<'_>) -> Result<(), InflateError> {
        self.run(input, out, FlushDecompress::None)
    }

    /// Ends the current message (appends the stripped trailer).
    pub fn finish(&mut self, out: &mut Output<'_>) -> Result<(), InflateError> {
        self.run(&TRAILER, out, FlushDecompress::Sync)
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Output<'_>,
        flush: FlushDecompress,
    ) -> Result<(), InflateError> {
        loop {
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            let room = out.keep.saturating_sub(out.buf.len());
            let status = if room > 0 {
                let chunk = room
                    .min(64 * 1024)
                    .max(input.len().saturating_mul(4).min(room));
                // Into reserved capacity: no zero-filling of output that may never be written.
                out.buf.reserve(chunk);
                let r = self.z.decompress_vec(input, out.buf, flush);
                // The allocator may have given more than asked: never keep past `keep`.
                out.buf.truncate(out.keep);
                r
            } else {
                if self.discard.is_empty() {
                    self.discard = vec![0; 32 * 1024];
                }
                let r = self.z.decompress(input, &mut self.discard, flush);
                let made = (self.z.total_out() - before_out) as usize;
                self.remember_tail(made);
                r
            };
            let consumed = (self.z.total_in() - before_in) as usize;
            let made = self.z.total_out() - before_out;
            out.produced += made;
            input = &input[consumed..];
            match status {
                Err(e) => return Err(InflateError::Data(e.to_string())),
                Ok(Status::StreamEnd) => {
                    // A final block inside permessage-deflate: the sender ended its stream;
                    // the next message starts a fresh one.
                    self.z.reset(false);
                    if input.is_empty() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
            }
            if out.produced > out.hard_limit {
                return Err(InflateError::Limit);
            }
            if input.is_empty() && made == 0 {
                return Ok(());
            }
            if consumed == 0 && made == 0 {
                // No progress with input left: zlib wants more input than exists.
                return Ok(());
            }
        }
    }

    fn remember_tail(&mut self, made: usize) {
        self.discarded += made as u64;
        let new = &self.discard[..made];
        let new = &new[new.len().saturating_sub(self.tail_max)..];
        let excess = (self.tail.len() + new.len()).saturating_sub(self.tail_max);
        self.tail.drain(..excess);
        self.tail.extend(new);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// A permessage-deflate sender: sync-flushes each message and strips the trailer.
    pub(crate) struct Deflater(Compress, bool);
    impl Deflater {
        pub(crate) fn new(context_takeover: bool) -> Self {
            Deflater(
                Compress::new(Compression::default(), false),
                context_takeover,
            )
        }
        pub(crate) fn message(&mut self, data: &[u8]) -> Vec<u8> {
            if !self.1 {
                self.0.reset();
            }
            let mut out = Vec::with_capacity(data.len() + 64);
            let start = self.0.total_in();
            loop {
                let done = (self.0.total_in() - start) as usize;
                let before = (self.0.total_in(), out.len());
                out.reserve(4096);
                self.0
                    .compress_vec(&data[done..], &mut out, FlushCompress::Sync)
                    .unwrap();
                let all_in = (self.0.total_in() - start) as usize == data.len();
                // Done when the flush marker is out, or when zlib has nothing left to say
                // (an empty message right after a flush).
                if all_in && (out.ends_with(&TRAILER) || before == (self.0.total_in(), out.len())) {
                    break;
                }
            }
            if out.ends_with(&TRAILER) {
                out.truncate(out.len() - 4);
            } else if out.is_empty() {
                // RFC 7692 section 7.2.3.6: an empty message may be sent as one 0x00 byte.
                out.push(0x00);
            }
            out
        }
    }

    const W: usize = 1 << 15;

    /// Inflates one message the way the decoder does: from the window, then the window moves on.
    fn inflate_keep(w: &mut Window, data: &[u8], keep: usize) -> Result<Vec<u8>, InflateError> {
        let mut i = Inflater::start(Some(w), W);
        let mut buf = Vec::new();
        let mut o = Output {
            buf: &mut buf,
            keep,
            produced: 0,
            hard_limit: 1 << 24,
        };
        let r = i.feed(data, &mut o).and_then(|_| i.finish(&mut o));
        let (t1, t2) = i.tail();
        let (t1, t2) = (t1.to_vec(), t2.to_vec());
        i.done();
        r?;
        w.extend(&[&buf, &t1, &t2], W);
        Ok(buf)
    }

    fn inflate(w: &mut Window, data: &[u8]) -> Result<Vec<u8>, InflateError> {
        inflate_keep(w, data, 1 << 20)
    }

    #[test]
    fn context_takeover_round_trip() {
        let mut d = Deflater::new(true);
        let mut w = Window::default();
        let msgs = [
            "hello hello hello",
            "hello hello hello again",
            "and hello once more",
        ];
        let enc: Vec<Vec<u8>> = msgs.iter().map(|m| d.message(m.as_bytes())).collect();
        // The second message refers back into the first.
        assert!(enc[1].len() < msgs[1].len());
        for (m, e) in msgs.iter().zip(&enc) {
            assert_eq!(inflate(&mut w, e).unwrap(), m.as_bytes());
        }
        assert_eq!(w.len(), msgs.iter().map(|m| m.len()).sum::<usize>());
    }

    #[test]
    fn window_carries_history_across_messages_larger_than_it() {
        // 40 KiB messages of repetitive text that keep referring back: the window must hold
        // exactly the last 32 KiB, also when the message was kept truncated.
        let mut d = Deflater::new(true);
        let mut w = Window::default();
        for round in 0..6u32 {
            let m: Vec<u8> = (0..40_000u32)
                .map(|i| b"abcdefghij klmnopqrst uvwxyz"[((i * 7 + round) % 28) as usize])
                .collect();
            let keep = if round % 2 == 0 { 1 << 20 } else { 1000 };
            let got = inflate_keep(&mut w, &d.message(&m), keep).unwrap();
            assert_eq!(got, &m[..keep.min(m.len())], "round {round}");
            assert_eq!(w.len(), W);
            assert!(w.capacity() <= W, "capacity {}", w.capacity());
        }
    }

    #[test]
    fn missing_history_is_an_error_not_garbage() {
        let mut d = Deflater::new(true);
        let first = d.message(b"the quick brown fox jumps over the lazy dog");
        let second = d.message(b"the quick brown fox jumps over the lazy dog!");
        let _ = first;
        let mut w = Window::default();
        assert!(matches!(
            inflate(&mut w, &second),
            Err(InflateError::Data(_))
        ));
    }

    #[test]
    fn no_context_takeover_each_message_stands_alone() {
        let mut d = Deflater::new(false);
        let a = d.message(b"abcabcabcabc");
        let b = d.message(b"abcabcabcabcabc");
        assert_eq!(
            inflate(&mut Window::default(), &b).unwrap(),
            b"abcabcabcabcabc"
        );
        assert_eq!(
            inflate(&mut Window::default(), &a).unwrap(),
            b"abcabcabcabc"
        );
    }

    #[test]
    fn empty_messages_after_a_flush_terminate_and_inflate() {
        let mut d = Deflater::new(true);
        let mut w = Window::default();
        for m in [&b"abc"[..], b"", b"", b"abcabc", b""] {
            let e = d.message(m);
            assert_eq!(inflate(&mut w, &e).unwrap(), m);
        }
    }

    #[test]
    fn bomb_stops_at_the_hard_limit() {
        let mut d = Deflater::new(true);
        let zeros = vec![0u8; 4 << 20];
        let enc = d.message(&zeros);
        assert!(enc.len() < 10_000);
        let mut i = Inflater::start(None, W);
        let mut buf = Vec::new();
        let mut o = Output {
            buf: &mut buf,
            keep: 1000,
            produced: 0,
            hard_limit: 1 << 20,
        };
        assert_eq!(i.feed(&enc, &mut o), Err(InflateError::Limit));
        assert_eq!(buf.len(), 1000);
    }
}
