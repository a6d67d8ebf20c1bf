//! Every view of the binary, through the library printers, on one run of the pipeline:
//! `--explain` (English or Russian, with or without `-X`), `--ladder` (Unicode or ASCII),
//! `--stats` (table and JSON), the human view with `-X -v`, and `-m` (messages with their
//! chat readings). Besides "no panic" and terminal safety, it checks the two costs the
//! engine promises to keep linear in the input:
//!
//! - memory: the most the process allocates while decoding one input (a counting global
//!   allocator) stays under the ledger's limit + [`FIXED_BYTES`] + [`BYTES_PER_INPUT_BYTE`]
//!   times the input;
//! - time: the thread's CPU time for one input stays under [`FIXED_CPU`] +
//!   [`CPU_PER_INPUT_BYTE`] times the input (some 60 times what the first campaign's inputs
//!   took per byte under AddressSanitizer, 0.7 µs), so a quadratic path is a crash, not a
//!   slow run.
//!
//! The view options come from the input's length, so the seeds stay plain capture files.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wsdump::analyzer::Config;
use wsdump::event::{Event, Sink, Stage};
use wsdump::output::Palette;
use wsdump::output::chat_view::{ChatOptions, ChatPrinter};
use wsdump::output::explain::ExplainPrinter;
use wsdump::output::human::{HumanOptions, HumanPrinter};
use wsdump::output::ladder::LadderPrinter;
use wsdump::output::summary::Summary;
use wsdump::output::texts::Lang;
use wsdump::output::time::{Stamper, TimeFormat, Zone};

/// The ledger's limit in this target: small, so that what it does not cover shows.
const LEDGER: usize = 4 << 20;
/// What is allocated whatever the input: the capture reader's 1 MiB buffer, zlib state, the
/// printers' buffers (the explain view flushes at 64 KiB), the longest output line.
const FIXED_BYTES: usize = 6 << 20;
/// Output and state per input byte that no ledger pool holds (escaping takes up to four
/// bytes per byte, a ladder row or a `--stats` row per few bytes of packet).
const BYTES_PER_INPUT_BYTE: usize = 64;
const FIXED_CPU: Duration = Duration::from_millis(500);
const CPU_PER_INPUT_BYTE: Duration = Duration::from_micros(40);

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = NOW.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                NOW.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; the clock exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Output checked line by line and then dropped, so that what the views print is not
/// counted as memory the decoder holds (only the longest line is).
struct Lines {
    line: Vec<u8>,
    json: bool,
}

impl Lines {
    fn new(json: bool) -> Self {
        Lines {
            line: Vec::new(),
            json,
        }
    }
    fn check(&mut self) {
        if self.json {
            common::check_json_lines(&self.line);
        } else {
            common::check_terminal_safe(&self.line);
        }
        self.line.clear();
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for part in buf.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(part);
            if part.ends_with(b"\n") {
                self.check();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// All views at once, as `Out` in the binary feeds one.
struct Views {
    explain: ExplainPrinter<Lines>,
    ladder: LadderPrinter<Lines>,
    hex: HumanPrinter<Lines>,
    messages: HumanPrinter<Lines>,
    chat: ChatPrinter<Lines>,
    stats: Summary,
}

impl Sink for Views {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        self.stats.observe(ev);
        self.explain.event(ev)?;
        self.ladder.event(ev)?;
        self.hex.event(ev)?;
        self.messages.event(ev)?;
        self.chat.event(ev)?;
        Ok(true)
    }
    fn stage(&mut self, s: Stage) -> io::Result<()> {
        if s == Stage::PacketDone {
            self.explain.flush()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Sink::finish(&mut self.explain)?;
        Sink::finish(&mut self.ladder)?;
        Sink::finish(&mut self.hex)?;
        Sink::finish(&mut self.messages)?;
        Sink::finish(&mut self.chat)?;
        let mut human = Lines::new(false);
        human.write_all(self.stats.human().as_bytes())?;
        human.check();
        common::check_json_lines(self.stats.json().as_bytes());
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let sel = data.len() % 8;
    let mut cfg = Config {
        max_memory: LEDGER,
        ..Config::default()
    };
    cfg.limits.max_message = 64 * 1024;
    cfg.limits.max_inflate = 1 << 20;
    if sel == 7 {
        common::tight(&mut cfg);
    }
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let cpu = thread_cpu();
    let mut views = Views {
        explain: ExplainPrinter::new(
            Lines::new(false),
            if sel & 1 != 0 { Lang::Ru } else { Lang::En },
            sel & 2 != 0,
        ),
        ladder: LadderPrinter::new(Lines::new(false), sel & 4 != 0),
        hex: HumanPrinter::new(
            Lines::new(false),
            Palette::plain(),
            HumanOptions {
                messages_only: false,
                verbose: true,
                hex: true,
                // Every header, cut to 80 columns, in either language: the -v view.
                headers: 2,
                width: (sel & 1 != 0).then_some(80),
                lang: if sel & 2 != 0 { Lang::Ru } else { Lang::En },
                ..HumanOptions::default()
            },
        ),
        messages: HumanPrinter::new(
            Lines::new(false),
            Palette::plain(),
            HumanOptions {
                messages_only: true,
                verbose: false,
                hex: false,
                ..HumanOptions::default()
            },
        ),
        chat: ChatPrinter::new(
            Lines::new(false),
            Palette::plain(),
            ChatOptions {
                heartbeats: sel & 4 != 0,
                width: (sel & 1 != 0).then_some(80),
                lang: if sel & 2 != 0 { Lang::Ru } else { Lang::En },
            },
            Stamper::new(TimeFormat::default(), Zone::Fixed(0)),
        ),
        stats: Summary::default(),
    };
    if common::run_pipeline(data, cfg, &mut views).is_none() {
        return;
    }
    drop(views);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let bound = LEDGER + FIXED_BYTES + BYTES_PER_INPUT_BYTE * data.len();
    assert!(
        peak <= bound,
        "{peak} bytes allocated at the peak for {} input bytes (bound {bound})",
        data.len()
    );
    let spent = thread_cpu() - cpu;
    let limit = FIXED_CPU + CPU_PER_INPUT_BYTE * data.len() as u32;
    assert!(
        spent <= limit,
        "{spent:?} of CPU for {} input bytes (bound {limit:?})",
        data.len()
    );
});
