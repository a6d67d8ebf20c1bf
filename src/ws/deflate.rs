//! permessage-deflate (RFC 7692): one inflater per direction, raw DEFLATE with a 32 KiB
//! window, each message ending with the `00 00 ff ff` the sender stripped.
//!
//! zlib (here through the pure-Rust zlib-rs backend) refuses a back-reference to bytes it never
//! produced ("invalid distance too far back"). That check is what lets a capture that starts
//! mid-conversation, or lost a message, say "cannot inflate" instead of printing garbage: the
//! inflater is reset at every point where history went missing.

use flate2::{Decompress, FlushDecompress, Status};

const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

pub struct Inflater {
    z: Decompress,
    /// Whether this inflater's window is still trustworthy.
    broken: bool,
    discard: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// Corrupt data, or a reference to history the capture lacks.
    Data(String),
    /// The message inflated past the hard limit.
    Limit,
}

/// Where inflated bytes go: kept up to `keep`, counted beyond.
pub struct Output<'a> {
    pub buf: &'a mut Vec<u8>,
    pub keep: usize,
    /// Bytes produced for this message so far (kept or not).
    pub produced: u64,
    pub hard_limit: u64,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Inflater {
            z: Decompress::new(false),
            broken: false,
            discard: Vec::new(),
        }
    }

    /// Starts from an empty window: after missing history, or per message without context
    /// takeover.
    pub fn reset(&mut self) {
        self.z.reset(false);
        self.broken = false;
    }

    pub fn is_broken(&self) -> bool {
        self.broken
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
        if self.broken {
            return Err(InflateError::Data("inflater lost its history".into()));
        }
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
                self.z.decompress(input, &mut self.discard, flush)
            };
            let consumed = (self.z.total_in() - before_in) as usize;
            let made = self.z.total_out() - before_out;
            out.produced += made;
            input = &input[consumed..];
            match status {
                Err(e) => {
                    self.broken = true;
                    return Err(InflateError::Data(e.to_string()));
                }
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
                self.broken = true;
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

    fn inflate(i: &mut Inflater, data: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut buf = Vec::new();
        let mut o = Output {
            buf: &mut buf,
            keep: 1 << 20,
            produced: 0,
            hard_limit: 1 << 24,
        };
        i.feed(data, &mut o)?;
        i.finish(&mut o)?;
        Ok(buf)
    }

    #[test]
    fn context_takeover_round_trip() {
        let mut d = Deflater::new(true);
        let mut i = Inflater::new();
        let msgs = [
            "hello hello hello",
            "hello hello hello again",
            "and hello once more",
        ];
        let enc: Vec<Vec<u8>> = msgs.iter().map(|m| d.message(m.as_bytes())).collect();
        // The second message refers back into the first.
        assert!(enc[1].len() < msgs[1].len());
        for (m, e) in msgs.iter().zip(&enc) {
            assert_eq!(inflate(&mut i, e).unwrap(), m.as_bytes());
        }
    }

    #[test]
    fn missing_history_is_an_error_not_garbage() {
        let mut d = Deflater::new(true);
        let first = d.message(b"the quick brown fox jumps over the lazy dog");
        let second = d.message(b"the quick brown fox jumps over the lazy dog!");
        let _ = first;
        let mut i = Inflater::new();
        assert!(matches!(
            inflate(&mut i, &second),
            Err(InflateError::Data(_))
        ));
    }

    #[test]
    fn no_context_takeover_each_message_stands_alone() {
        let mut d = Deflater::new(false);
        let a = d.message(b"abcabcabcabc");
        let b = d.message(b"abcabcabcabcabc");
        let mut i = Inflater::new();
        assert_eq!(inflate(&mut i, &b).unwrap(), b"abcabcabcabcabc");
        i.reset();
        assert_eq!(inflate(&mut i, &a).unwrap(), b"abcabcabcabc");
    }

    #[test]
    fn empty_messages_after_a_flush_terminate_and_inflate() {
        let mut d = Deflater::new(true);
        let mut i = Inflater::new();
        for m in [&b"abc"[..], b"", b"", b"abcabc", b""] {
            let e = d.message(m);
            assert_eq!(inflate(&mut i, &e).unwrap(), m);
        }
    }

    #[test]
    fn bomb_stops_at_the_hard_limit() {
        let mut d = Deflater::new(true);
        let zeros = vec![0u8; 4 << 20];
        let enc = d.message(&zeros);
        assert!(enc.len() < 10_000);
        let mut i = Inflater::new();
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
