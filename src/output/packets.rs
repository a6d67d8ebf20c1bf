//! The packets written back out (`-w`): as a pcap file, what tcpdump writes, or as pcapng
//! with wsdump's reading of each message in a comment on the packet that completed it, which
//! Wireshark shows (`frame.comment`).
//!
//! Both are sinks: the pipeline hands each packet over once its events have been delivered
//! ([`Sink::captured`]), so the comments of a packet are known when it is written. What is
//! held between two packets is that one packet's comments: bounded by the packet, not by the
//! capture.

use super::{Palette, escape, human};
use crate::capture::pcapng_writer::PcapngWriter;
use crate::capture::writer::PcapWriter;
use crate::capture::{LinkType, RawPacket};
use crate::event::{Dir, Event, EventKind, Sink, Stage};
use std::io::{self, Write};

/// Longest comment text kept of a message's payload, in bytes; the rest is `…`.
const COMMENT_PREVIEW: usize = 1024;

/// pcapng with a comment per completed message, and room for decryption secrets.
pub struct PcapngOut<W: Write> {
    w: PcapngWriter<W>,
    comments: Vec<String>,
    summary: human::HumanPrinter<io::Sink>,
    /// Flush after every packet (live capture: the file is readable as it grows).
    flush_each: bool,
}

impl<W: Write> PcapngOut<W> {
    /// Writes the section header. `snaplen` goes into each interface's description.
    pub fn new(out: W, snaplen: u32, flush_each: bool) -> io::Result<Self> {
        Ok(PcapngOut {
            w: PcapngWriter::new(out, snaplen)?,
            comments: Vec::new(),
            summary: human::HumanPrinter::new(io::sink(), Palette::plain(), Default::default()),
            flush_each,
        })
    }

    /// Adds TLS key log text (`CLIENT_RANDOM ...` lines, as SSLKEYLOGFILE holds them) as a
    /// Decryption Secrets Block, written at once: before every packet written after this
    /// call, so call it before the packets those keys decrypt. Wireshark and tshark then
    /// decrypt wss:// without being given the key file.
    pub fn write_tls_keys(&mut self, keylog: &[u8]) -> io::Result<()> {
        self.w.write_tls_keys(keylog)
    }

    /// The writer, flushed.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w.into_inner())
    }

    /// The one-line comment for a message: `c2s text 9: hi, all !`, then the application
    /// protocol's reading if there is one (`↳ mynick → all: hi`); escaped as the human view
    /// escapes, so no control character reaches Wireshark's packet list.
    fn comment(&mut self, ev: &Event<'_>, m: &crate::event::Message<'_>) -> String {
        let mut c = String::from(match ev.dir {
            Dir::C2S => "c2s ",
            Dir::S2C => "s2c ",
        });
        let mut line = String::new();
        self.summary.message_summary(m, &mut line);
        if line.len() > COMMENT_PREVIEW {
            let mut end = COMMENT_PREVIEW;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        c.push_str(&line);
        if let Some(app) = ev.app {
            c.push_str(" ↳ ");
            escape::text(&app.text, &mut c);
        }
        c
    }
}

impl<W: Write> Sink for PcapngOut<W> {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<bool> {
        if let EventKind::Message(m) = &ev.kind {
            let c = self.comment(ev, m);
            self.comments.push(c);
        }
        Ok(true)
    }

    fn stage(&mut self, stage: Stage) -> io::Result<()> {
        // Messages flushed at the end of input were completed by no packet.
        if matches!(stage, Stage::Packet(_) | Stage::Finish) {
            self.comments.clear();
        }
        Ok(())
    }

    fn captured(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        self.w.write_with_comments(p, &self.comments)?;
        self.comments.clear();
        if self.flush_each {
            self.w.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// A pcap file of the packets as captured. It holds one link type: the first packet's;
/// a packet of another is refused with the way out (pcapng).
pub struct PcapOut<W: Write> {
    out: Option<W>,
    w: Option<(PcapWriter<W>, LinkType)>,
    snaplen: u32,
    flush_each: bool,
}

impl<W: Write> PcapOut<W> {
    /// The file header is written with the first packet, whose link type and timestamp
    /// precision it takes.
    pub fn new(out: W, snaplen: u32, flush_each: bool) -> Self {
        PcapOut {
            out: Some(out),
            w: None,
            snaplen,
            flush_each,
        }
    }
}

impl<W: Write> Sink for PcapOut<W> {
    fn event(&mut self, _ev: &Event<'_>) -> io::Result<bool> {
        Ok(true)
    }

    fn captured(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        if self.w.is_none()
            && let Some(out) = self.out.take()
        {
            let w = PcapWriter::new(out, p.linktype, p.ts.nano_precision, self.snaplen)?;
            self.w = Some((w, p.linktype));
        }
        let Some((w, lt)) = &mut self.w else {
            return Ok(());
        };
        if *lt != p.linktype {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "-w: a pcap file holds one link type, and this capture has {} and {}; \
                     write pcapng instead (-w FILE.pcapng, or -F pcapng)",
                    lt.name(),
                    p.linktype.name()
                ),
            ));
        }
        w.write(p)?;
        if self.flush_each {
            w.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        match &mut self.w {
            Some((w, _)) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::event::{Annotation, ConnInfo, Message, Opcode};

    fn conn() -> ConnInfo {
        let client = "127.0.0.1:40000".parse().unwrap();
        let server = "127.0.0.1:7272".parse().unwrap();
        ConnInfo {
            id: 1,
            client,
            server,
        }
    }

    fn text(t: &str) -> Message<'_> {
        Message {
            opcode: Opcode::Text,
            payload: t.as_bytes(),
            len: t.len() as u64,
            wire_len: t.len() as u64,
            compressed: false,
            frames: 1,
            truncated: false,
            incomplete: None,
            missing: Vec::new(),
            resync: false,
            valid_utf8: true,
            text: Some(t),
            close_code: None,
            close_reason: None,
        }
    }

    #[test]
    fn comments_go_on_the_packet_that_completed_the_message() {
        let c = conn();
        let mut out = PcapngOut::new(Vec::new(), 0, false).unwrap();
        let app = Annotation {
            protocol: "workerman-chat",
            text: "mynick → all: hi\u{1b}[31m".into(),
            heartbeat: false,
            ..Default::default()
        };
        let m1 = text("hi, all !");
        let m2 = text("line\nbreak");
        let data = [0u8; 20];
        let p = RawPacket {
            ts: Timestamp::from_micros(1, 0),
            linktype: LinkType::RAW,
            orig_len: 20,
            data: &data,
            iface: 0,
        };
        out.stage(Stage::Packet(0)).unwrap();
        out.captured(&p).unwrap();
        out.stage(Stage::Packet(1)).unwrap();
        for (m, a, d) in [(&m1, Some(&app), Dir::C2S), (&m2, None, Dir::S2C)] {
            let ev = Event {
                ts: p.ts,
                conn: Some(&c),
                dir: d,
                kind: EventKind::Message(m),
                app: a,
                label: None,
            };
            out.event(&ev).unwrap();
        }
        assert_eq!(
            out.comments,
            [
                "c2s text 9: hi, all ! ↳ mynick → all: hi\\e[31m",
                "s2c text 10: line\\nbreak"
            ]
        );
        out.captured(&p).unwrap();
        assert!(out.comments.is_empty());
        let bytes = out.into_inner().unwrap();
        let mut f = crate::capture::file::CaptureFile::open(std::io::Cursor::new(bytes)).unwrap();
        let mut n = 0;
        crate::engine::PacketSource::for_each(&mut f, &mut |q| {
            assert_eq!(q.data, &data[..]);
            n += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn tls_keys_go_before_the_packets_written_after() {
        let mut out = PcapngOut::new(Vec::new(), 0, false).unwrap();
        out.write_tls_keys(b"CLIENT_RANDOM 00 11\n").unwrap();
        let data = [0u8; 20];
        let p = RawPacket {
            ts: Timestamp::from_micros(1, 0),
            linktype: LinkType::RAW,
            orig_len: 20,
            data: &data,
            iface: 0,
        };
        out.captured(&p).unwrap();
        let b = out.into_inner().unwrap();
        // Blocks in order: SHB, DSB (type 10, secrets type TLSK), IDB (1), EPB (6).
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < b.len() {
            let kind = u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
            let len = u32::from_ne_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            kinds.push(kind);
            if kind == 10 {
                let t = u32::from_ne_bytes(b[at + 8..at + 12].try_into().unwrap());
                assert_eq!(t, crate::capture::pcapng_writer::SECRETS_TLS_KEY_LOG);
            }
            at += len;
        }
        assert_eq!(kinds, [0x0A0D_0D0A, 10, 1, 6]);
    }

    #[test]
    fn pcap_refuses_a_second_link_type() {
        let mut out = PcapOut::new(Vec::new(), 0, false);
        let data = [0u8; 20];
        let mut p = RawPacket {
            ts: Timestamp::from_micros(1, 0),
            linktype: LinkType::RAW,
            orig_len: 20,
            data: &data,
            iface: 0,
        };
        out.captured(&p).unwrap();
        p.linktype = LinkType::ETHERNET;
        let e = out.captured(&p).unwrap_err();
        assert!(e.to_string().contains("pcapng"), "{e}");
    }
}
