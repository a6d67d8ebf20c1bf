//! The pipeline: packets in, events out to a [`Sink`]. This is the one read → decode →
//! finish loop; the binary, the threaded decoder, the examples, the fuzz targets and the tests
//! all run it.
//!
//! ```no_run
//! use wsdump::engine::Pipeline;
//! use wsdump::analyzer::Config;
//! use wsdump::capture::file::CaptureFile;
//! use wsdump::event::{Event, EventKind, Sink};
//!
//! struct Texts;
//! impl Sink for Texts {
//!     fn event(&mut self, ev: &Event<'_>) -> std::io::Result<bool> {
//!         if let EventKind::Message(m) = &ev.kind {
//!             println!("{}", m.text().unwrap_or("(binary)"));
//!         }
//!         Ok(true)
//!     }
//! }
//!
//! let mut file = CaptureFile::open(std::fs::File::open("chat.pcap")?)?;
//! let run = Pipeline::run(&mut file, Config::default(), &mut Texts)?;
//! println!("{} messages", run.stats.messages);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::analyzer::{Analyzer, Config, Share, Stats};
use crate::capture::live::Dropped;
use crate::capture::{RawPacket, Timestamp};
pub use crate::event::Stage;
use crate::event::{Notice, Sink};
use crate::memory::Memory;
use crate::tls::KeyStore;
use std::io;
use std::ops::ControlFlow;

/// Where packets come from: a capture file, standard input, a live capture.
pub trait PacketSource {
    /// Why reading stopped early.
    type Error;
    /// Calls `f` for each packet in capture order until `f` breaks or the packets end.
    /// Packets before an `Err` have been delivered (the caller reports them, then the error).
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), Self::Error>;

    /// Where the source puts TLS secrets it carries (a pcapng file's Decryption Secrets
    /// Blocks), filled as they are read: the pipeline decrypts with them when its
    /// configuration names no key log of its own.
    fn keys(&self) -> Option<KeyStore> {
        None
    }
    /// [`PacketSource::for_each`] with what the source lost between packets (live capture's
    /// drops), for sources that know; the pipeline reports each where it came.
    fn for_each_input(
        &mut self,
        f: &mut dyn FnMut(Input<'_>) -> ControlFlow<()>,
    ) -> Result<(), Self::Error> {
        self.for_each(&mut |p| f(Input::Packet(p)))
    }
}

/// What a source delivers: a packet, or the record of packets it lost at this place.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The next packet.
    Packet(&'a RawPacket<'a>),
    /// Nothing more for now (live capture has caught up with the wire).
    Idle,
    /// Packets lost here.
    Dropped {
        /// When (the first lost packet's arrival, or when the loss was noticed).
        ts: Timestamp,
        /// Who lost how many.
        what: Dropped,
    },
}

/// What a run left: its counters, and why the source stopped early if it did.
#[derive(Debug)]
pub struct Run<E> {
    /// What was decoded (packets, connections, messages, gaps, the memory peak).
    pub stats: Stats,
    /// The source ended badly after the packets that were delivered.
    pub source_error: Option<E>,
}

/// The decoding engine: one connection table and its memory ledger.
pub struct Pipeline {
    analyzer: Analyzer,
    last_ts: Timestamp,
    packets: u64,
}

impl Pipeline {
    /// A pipeline with its own connection table and a memory ledger of `cfg.max_memory`.
    pub fn new(cfg: Config) -> Self {
        Pipeline {
            analyzer: Analyzer::new(cfg),
            last_ts: Timestamp::default(),
            packets: 0,
        }
    }

    /// A pipeline that decodes one share of the connections of a capture that several read
    /// (see [`Analyzer::with_share`]).
    pub fn with_share(cfg: Config, share: Share) -> Self {
        Pipeline {
            analyzer: Analyzer::with_share(cfg, share),
            ..Pipeline::new(Config::default())
        }
    }

    /// Decodes one packet; `Break` once the sink has asked to stop.
    pub fn packet(
        &mut self,
        p: &RawPacket<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<ControlFlow<()>> {
        self.last_ts = self.last_ts.max(p.ts);
        sink.stage(Stage::Packet(self.packets))?;
        self.packets += 1;
        let kept = self.analyzer.decode(p, sink)?;
        if kept {
            sink.stage(Stage::Sweep)?;
            self.analyzer.tick(p.ts, sink)?;
        }
        sink.stage(Stage::PacketDone)?;
        // What the capture filter keeps, as tcpdump -r IN -w OUT EXPR writes it: with no
        // filter, every packet, TCP or not.
        if kept || !self.analyzer.filtering() {
            sink.captured(p)?;
        }
        Ok(if self.analyzer.stopped() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    /// The source lost packets at this place (live capture's queue or the kernel's ring was
    /// full): a packet-level `dropped` notice, between the packets it came between.
    pub fn dropped(
        &mut self,
        ts: Timestamp,
        what: Dropped,
        sink: &mut dyn Sink,
    ) -> io::Result<ControlFlow<()>> {
        let n = match what {
            Dropped::Queue { packets, bytes } => Notice::Dropped {
                by: "wsdump",
                packets,
                bytes: Some(bytes),
            },
            Dropped::Kernel { packets } => Notice::Dropped {
                by: "kernel",
                packets,
                bytes: None,
            },
        };
        self.analyzer
            .source_notice(ts.max(self.last_ts), &n, sink)?;
        Ok(if self.analyzer.stopped() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    /// The memory ledger, to charge what the caller holds on the pipeline's behalf (live
    /// capture's queue).
    pub fn memory_mut(&mut self) -> &mut Memory {
        self.analyzer.memory_mut()
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.analyzer.stats
    }

    /// The memory ledger.
    pub fn memory(&self) -> &Memory {
        self.analyzer.memory()
    }

    /// Connections tracked now.
    pub fn tracked(&self) -> usize {
        self.analyzer.tracked()
    }

    /// End of input: open connections deliver what they hold and end (unless the sink
    /// stopped the run), then the sink finishes.
    pub fn finish(&mut self, sink: &mut dyn Sink) -> io::Result<Stats> {
        if !self.analyzer.stopped() {
            sink.stage(Stage::Finish)?;
            self.analyzer.finish(self.last_ts, sink)?;
        }
        let mut stats = self.analyzer.stats.clone();
        stats.peak_memory = self.analyzer.memory().peak();
        sink.finish()?;
        Ok(stats)
    }

    /// Decodes everything `src` delivers into `sink`: the loop.
    pub fn run<S: PacketSource + ?Sized>(
        src: &mut S,
        mut cfg: Config,
        sink: &mut dyn Sink,
    ) -> io::Result<Run<S::Error>> {
        if cfg.keys.is_none() {
            cfg.keys = src.keys();
        }
        Pipeline::new(cfg).drive(src, sink)
    }

    /// [`Pipeline::run`] with this pipeline (e.g. one made by [`Pipeline::with_share`]),
    /// which can be looked at afterwards (its ledger, its table).
    pub fn drive<S: PacketSource + ?Sized>(
        &mut self,
        src: &mut S,
        sink: &mut dyn Sink,
    ) -> io::Result<Run<S::Error>> {
        let mut err = None;
        let read = src.for_each_input(&mut |input| {
            let r = match input {
                Input::Packet(p) => self.packet(p, sink),
                Input::Dropped { ts, what } => self.dropped(ts, what, sink),
                Input::Idle => sink.stage(Stage::Idle).map(|()| ControlFlow::Continue(())),
            };
            r.unwrap_or_else(|e| {
                err = Some(e);
                ControlFlow::Break(())
            })
        });
        if let Some(e) = err {
            return Err(e);
        }
        let stats = self.finish(sink)?;
        Ok(Run {
            stats,
            source_error: read.err(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::event::{Event, EventKind};

    /// Packets from memory.
    struct Packets(Vec<Vec<u8>>);

    impl PacketSource for Packets {
        type Error = ();
        fn for_each(
            &mut self,
            f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
        ) -> Result<(), ()> {
            for (i, d) in self.0.iter().enumerate() {
                let p = RawPacket {
                    ts: Timestamp::from_micros(1_700_000_000 + i as i64, 0),
                    linktype: LinkType::RAW,
                    orig_len: d.len() as u32,
                    data: d,
                    iface: 0,
                };
                if f(&p).is_break() {
                    break;
                }
            }
            Ok(())
        }
    }

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// Counts events, stops after `stop_after` TCP events, remembers the stages.
    #[derive(Default)]
    struct Counter {
        tcp: usize,
        ends: usize,
        stop_after: usize,
        stages: Vec<Stage>,
        finished: bool,
    }

    impl Sink for Counter {
        fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
            match ev.kind {
                EventKind::Tcp(_) => self.tcp += 1,
                EventKind::End => self.ends += 1,
                _ => {}
            }
            Ok(self.stop_after == 0 || self.tcp < self.stop_after)
        }
        fn stage(&mut self, s: Stage) -> io::Result<()> {
            self.stages.push(s);
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            self.finished = true;
            Ok(())
        }
    }

    fn three_connections() -> Packets {
        Packets((0..3).map(|i| tcp(40000 + i, 80, 1, 0x02, b"")).collect())
    }

    #[test]
    fn runs_to_the_end_and_finishes() {
        let mut sink = Counter::default();
        let run = Pipeline::run(&mut three_connections(), Config::default(), &mut sink).unwrap();
        assert_eq!((sink.tcp, sink.ends, sink.finished), (3, 3, true));
        assert_eq!(run.stats.connections, 3);
        assert_eq!(
            sink.stages[..3],
            [Stage::Packet(0), Stage::Sweep, Stage::PacketDone]
        );
        assert_eq!(sink.stages.last(), Some(&Stage::Finish));
    }

    #[test]
    fn a_sink_that_says_stop_ends_the_run_and_is_still_finished() {
        let mut sink = Counter {
            stop_after: 2,
            ..Counter::default()
        };
        let run = Pipeline::run(&mut three_connections(), Config::default(), &mut sink).unwrap();
        assert_eq!(run.stats.packets, 2, "stopped after the second packet");
        assert_eq!((sink.tcp, sink.ends, sink.finished), (2, 0, true));
        assert!(!sink.stages.contains(&Stage::Finish));
    }
}
