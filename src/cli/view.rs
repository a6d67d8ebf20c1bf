//! The views: the printer the flags ask for, behind the display filters, `-c` and `--stats`.

use super::args::*;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use wsdump::engine::Stage;
use wsdump::event::{Event, EventKind, Sink};
use wsdump::output::Palette;
use wsdump::output::chat_view::{ChatOptions, ChatPrinter};
use wsdump::output::explain::ExplainPrinter;
use wsdump::output::filter::Filter;
use wsdump::output::human::{HumanOptions, HumanPrinter};
use wsdump::output::json::{JsonOptions, JsonPrinter};
use wsdump::output::ladder::{LadderPrinter, locale_is_utf8};
use wsdump::output::summary::Summary;
use wsdump::output::time::{Stamper, TimeFormat, Zone};
use wsdump::output::width;

pub(crate) enum Printer {
    Human(HumanPrinter<BufWriter<File>>),
    Json(JsonPrinter<BufWriter<File>>),
    Explain(ExplainPrinter<BufWriter<File>>),
    Ladder(LadderPrinter<BufWriter<File>>),
    Chat(ChatPrinter<BufWriter<File>>),
}

/// The printer, behind the display filters, `-c` and `--stats`.
pub(crate) struct Out {
    pub(crate) printer: Printer,
    pub(crate) filter: Filter,
    pub(crate) summary: Option<Summary>,
    /// Standard output carries something else (`-w -`): the summary goes to stderr.
    pub(crate) summary_to_stderr: bool,
    pub(crate) json: bool,
    pub(crate) limit: Option<u64>,
    pub(crate) messages: u64,
    /// Flush after every packet (a pipe or a terminal reads, or -l).
    pub(crate) line_mode: bool,
}

impl Out {
    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.messages >= l)
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match &mut self.printer {
            Printer::Human(p) => p.flush(),
            Printer::Json(p) => p.flush(),
            Printer::Explain(p) => p.flush(),
            Printer::Ladder(p) => p.flush(),
            Printer::Chat(p) => p.flush(),
        }
    }
}

impl Sink for Out {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if self.done() {
            return Ok(false);
        }
        if !self.filter.passes(ev) {
            // What a filter hides still counts for the verdicts (an unanswered heartbeat
            // hidden by --no-heartbeats still explains the cut that follows).
            match &mut self.printer {
                Printer::Human(p) => p.observe(ev),
                Printer::Chat(p) => p.observe(ev),
                _ => {}
            }
            return Ok(true);
        }
        if let Some(s) = &mut self.summary {
            s.observe(ev);
        }
        if let EventKind::Message(_) = ev.kind {
            self.messages += 1;
        }
        match &mut self.printer {
            Printer::Human(p) => p.event(ev)?,
            Printer::Json(p) => p.event(ev)?,
            Printer::Explain(p) => p.event(ev)?,
            Printer::Ladder(p) => p.event(ev)?,
            Printer::Chat(p) => p.event(ev)?,
        };
        Ok(!self.done())
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        if stage == Stage::PacketDone && self.line_mode {
            self.flush()?;
        }
        Ok(())
    }

    /// End of the run: what is still buffered, then the `--stats` summary.
    fn finish(&mut self) -> io::Result<()> {
        match &mut self.printer {
            Printer::Human(p) => p.finish()?,
            Printer::Json(p) => p.finish()?,
            Printer::Explain(p) => p.finish()?,
            Printer::Ladder(p) => p.finish()?,
            Printer::Chat(p) => p.finish()?,
        }
        if let Some(s) = &self.summary {
            let text = if self.json { s.json() } else { s.human() };
            if self.summary_to_stderr {
                eprint!("{text}");
            } else {
                let mut out = raw_stdout();
                let r = out.write_all(text.as_bytes());
                // The printer owns fd 1 and closes it; this handle must not.
                std::mem::forget(out);
                r?;
            }
        }
        Ok(())
    }
}

/// Standard output without Rust's own line buffering: we decide when to flush.
pub(crate) fn raw_stdout() -> File {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 1 is open for the life of the process and nothing else writes to it.
    unsafe { File::from_raw_fd(1) }
}

/// Pipes and terminals get each packet's lines at once; files get big writes.
pub(crate) fn stdout_wants_lines() -> bool {
    if io::stdout().is_terminal() {
        return true;
    }
    // SAFETY: fstat on fd 1 with a zeroed, properly sized stat buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(1, &mut st) != 0 {
            return true;
        }
        let fmt = st.st_mode & libc::S_IFMT;
        fmt == libc::S_IFIFO || fmt == libc::S_IFSOCK
    }
}

pub(crate) fn palette(when: ColorWhen) -> Palette {
    let env_off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => io::stdout().is_terminal() && !env_off,
    };
    if on {
        Palette::colored()
    } else {
        Palette::plain()
    }
}

/// The printer `--json`, `-m`, `-v`, `-X`, `--color`, `--explain`, `--ladder` ask for,
/// behind the filters, `-c` and `--stats`.
pub(crate) fn make_sink(args: &Args) -> Out {
    make_sink_to(args, raw_stdout())
}

pub(crate) fn make_sink_to(args: &Args, file: File) -> Out {
    let out = BufWriter::with_capacity(64 * 1024, file);
    let printer = if args.explain {
        Printer::Explain(ExplainPrinter::new(out, args.lang, args.hex))
    } else if args.ladder {
        let ladder = LadderPrinter::new(out, locale_is_utf8());
        // Live or from a pipe, rows are drawn as they come; a file's diagrams are whole.
        let streaming = args.read.as_deref().is_none_or(|r| r == "-");
        Printer::Ladder(if streaming { ladder.live() } else { ladder })
    } else if args.chat {
        let opts = ChatOptions {
            heartbeats: args.verbose > 0,
            width: cut_width(args),
            lang: args.lang,
        };
        Printer::Chat(ChatPrinter::new(
            out,
            palette(args.color),
            opts,
            Stamper::new(time_format(args), Zone::Local),
        ))
    } else if args.json {
        Printer::Json(JsonPrinter::new(out, json_options(args)))
    } else {
        Printer::Human(
            HumanPrinter::new(out, palette(args.color), human_options(args))
                .with_time(time_format(args), Zone::Local),
        )
    };
    Out {
        printer,
        filter: make_filter(args),
        summary: args.stats.then(|| Summary::in_lang(args.lang)),
        summary_to_stderr: super::exports::stdout_taken(args),
        json: args.json,
        limit: args.count,
        messages: 0,
        line_mode: false,
    }
}

pub(crate) fn json_options(args: &Args) -> JsonOptions {
    JsonOptions {
        messages_only: args.messages,
        verbose: args.verbose > 0,
        community_id_seed: args.community_id_seed,
        redact: args.redact,
        max_payload: args.max_payload,
    }
}

pub(crate) fn human_options(args: &Args) -> HumanOptions {
    HumanOptions {
        messages_only: args.messages,
        verbose: args.verbose > 0,
        hex: args.hex,
        width: cut_width(args),
        headers: args.verbose,
        lang: args.lang,
        ..HumanOptions::default()
    }
}

/// The width payload previews are cut to: a terminal's, unless payloads are wanted whole
/// (-v, -X, -A).
pub(crate) fn cut_width(args: &Args) -> Option<usize> {
    if args.verbose > 0 || args.hex || args.ascii {
        return None;
    }
    width::terminal()
}

/// `-t`...`-ttttt`.
pub(crate) fn time_format(args: &Args) -> TimeFormat {
    TimeFormat::from_t_count(usize::from(args.time))
}

pub(crate) fn make_filter(args: &Args) -> Filter {
    Filter {
        dir: args.dir,
        opcodes: args.opcode.clone(),
        conn: args.conn.clone(),
        grep: args.grep.clone(),
        exclude: args.exclude.clone(),
        no_heartbeats: args.no_heartbeats,
    }
}

/// What a decoding thread prints with when several share a file: the same printer and
/// filters as [`make_sink`], into memory.
pub(crate) struct Rendering {
    filter: Filter,
    printer: MemPrinter,
}

pub(crate) enum MemPrinter {
    Json(JsonPrinter<io::Sink>),
    Human(Box<HumanPrinter<io::Sink>>),
}

impl wsdump::shard::Render for Rendering {
    fn render(&mut self, ev: &Event<'_>, out: &mut String) -> bool {
        if !self.filter.passes(ev) {
            if let MemPrinter::Human(p) = &mut self.printer {
                p.observe(ev);
            }
            return false;
        }
        match &mut self.printer {
            MemPrinter::Json(p) => p.render(ev, out),
            MemPrinter::Human(p) => p.render(ev, out),
        }
        matches!(ev.kind, EventKind::Message(_))
    }
}

/// Whether the view can be printed by several decoding threads: not those that keep state
/// across connections (`--explain`, `--ladder`, `--stats`, and the times since the previous
/// or the first line, `-ttt` and `-ttttt`).
pub(crate) fn shareable(args: &Args) -> bool {
    let relative = matches!(
        time_format(args),
        TimeFormat::DeltaPrevious | TimeFormat::DeltaFirst
    );
    // The exports (--har, -w) are written in capture order by one sink.
    let exports = args.har.is_some() || args.write.is_some();
    !(args.explain || args.ladder || args.chat || args.stats || exports || (relative && !args.json))
}

/// The printer for a decoding thread (a [`shareable`] view).
pub(crate) fn make_render(args: &Args) -> Rendering {
    let printer = if args.json {
        MemPrinter::Json(JsonPrinter::new(io::sink(), json_options(args)))
    } else {
        MemPrinter::Human(Box::new(
            HumanPrinter::new(io::sink(), palette(args.color), human_options(args))
                .with_time(time_format(args), Zone::Local),
        ))
    };
    Rendering {
        filter: make_filter(args),
        printer,
    }
}
