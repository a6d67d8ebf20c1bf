//! Message assembly: frame payloads unmasked and gathered (or inflated) into messages,
//! control frames, the compression history kept between messages, and the event out.

use super::checks::close_code_valid;
use super::*;
use crate::event::{Emit, EventKind, Opcode};
use crate::memory::Memory;
use std::io;

impl WsDecoder {
    pub(super) fn payload(
        &mut self,
        chunk: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let Some(key) = self.frame.as_ref().and_then(|f| f.h.mask) else {
            return self.payload_plain(chunk, chunk, mem, em);
        };
        // Unmasked a block at a time on the stack: no per-connection buffer that grows to the
        // largest segment ever seen.
        for piece in chunk.chunks(UNMASK_BLOCK) {
            let mut block = [0u8; UNMASK_BLOCK];
            let plain = &mut block[..piece.len()];
            plain.copy_from_slice(piece);
            apply_mask(plain, key, self.frame.as_ref().map_or(0, |f| f.pos));
            self.payload_plain(piece, plain, mem, em)?;
        }
        Ok(())
    }

    /// Payload bytes as sent (`wire`) and unmasked (`plain`, the same when not masked).
    pub(super) fn payload_plain(
        &mut self,
        wire: &[u8],
        plain: &[u8],
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let Some(f) = &mut self.frame else {
            return Ok(());
        };
        let chunk = wire;
        let n = chunk.len();
        f.remaining -= n as u64;
        self.offset += n as u64;
        if (f.head_len as usize) < 16 {
            let h = f.head_len as usize;
            let k = (16 - h).min(n);
            f.head_wire[h..h + k].copy_from_slice(&chunk[..k]);
            f.head_plain[h..h + k].copy_from_slice(&plain[..k]);
            f.head_len += k as u8;
        }
        f.pos += n as u64;
        let op = Opcode::from_u8(f.h.opcode);
        let discard = f.discard;
        let mut result = Ok(());
        if op.is_control() {
            // A control payload is at most 125 bytes (RFC 6455 5.5). A longer one is a
            // violation, reported at its header, and still means what its opcode says: a close
            // keeps its code and reason (Zeek reports all 256 bytes of one), up to
            // `--max-message`, the bytes past 125 charged like a message's.
            let cap = self.limits.max_message.max(125);
            let c = self.ctrl.get_or_insert_with(Box::default);
            let mut keep = cap.saturating_sub(c.buf.len()).min(n);
            let past = (c.buf.len() + keep).saturating_sub(125.max(c.buf.len()));
            if past > 0 {
                keep -= past - mem.grant(Pool::Messages, past);
            }
            c.buf.extend_from_slice(&plain[..keep]);
            c.len += n as u64;
        } else if !discard && let Some(m) = &mut self.msg {
            let before = m.buf.len();
            result = append(m, plain, &self.limits);
            let grown = m.buf.len() - before;
            if grown > 0 {
                let granted = mem.grant(Pool::Messages, grown);
                if granted < grown {
                    // Memory for unfinished messages is spent: keep what we have, count the rest.
                    m.buf.truncate(before + granted);
                    m.cap = m.buf.len();
                }
            }
        }
        if let Err(e) = result {
            self.inflate_failed(e, em)?;
        }
        Ok(())
    }

    pub(super) fn inflate_failed(&mut self, e: InflateError, em: &mut dyn Emit) -> io::Result<()> {
        let Some(m) = &mut self.msg else {
            return Ok(());
        };
        m.inflate_dead = true;
        match e {
            InflateError::Limit => {
                m.incomplete = Some(Incomplete::InflateLimit);
                let limit = self.limits.max_inflate;
                self.violation(
                    ViolationKind::InflateLimit,
                    format!("message inflates past {limit} bytes; decompression stopped"),
                    em,
                )?;
            }
            InflateError::Data(why) => {
                m.incomplete.get_or_insert(Incomplete::InflateFailed);
                if !self.history_lost {
                    self.violation(ViolationKind::InflateError, why, em)?;
                }
            }
        }
        // What follows in this direction may refer back to what could not be inflated.
        self.history_lost = true;
        Ok(())
    }

    pub(super) fn end_frame(&mut self, mem: &mut Memory, em: &mut dyn Emit) -> io::Result<()> {
        let Some(f) = self.frame.take() else {
            return Ok(());
        };
        if f.resync {
            self.clean_frames = 0;
        } else {
            self.clean_frames += 1;
        }
        if em.wants_frames() {
            let info = FrameInfo {
                fin: f.h.fin,
                rsv: f.h.rsv,
                opcode: f.h.opcode,
                mask: f.h.mask,
                payload_len: f.h.payload_len,
                header_len: f.h.header_len,
                stream_offset: f.stream_offset,
                head_wire: f.head_wire,
                head_plain: f.head_plain,
                head_len: f.head_len,
                resync: f.resync,
            };
            em.emit(self.dir, EventKind::Frame(&info))?;
        }
        let op = Opcode::from_u8(f.h.opcode);
        if op.is_control() {
            self.control_message(op, f.h.payload_len, mem, em)?;
        } else if f.h.fin
            && !f.discard
            && let Some(m) = self.msg.take()
        {
            self.finish_message(m, mem, em)?;
        }
        Ok(())
    }

    pub(super) fn control_message(
        &mut self,
        op: Opcode,
        wire_len: u64,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let Ctrl {
            buf: ctrl,
            len: ctrl_len,
            gap: ctrl_gap,
        } = self.ctrl.take().map(|c| *c).unwrap_or_default();
        // Cut at `--max-message` (or by the memory budget): `truncated`, and the code and the
        // reason's first bytes are still known. A gap inside it: nothing is known for sure.
        let truncated = !ctrl_gap && (ctrl.len() as u64) < ctrl_len;
        let mut close_code = None;
        let mut close_reason = None;
        let mut valid_utf8 = true;
        if op == Opcode::Close && !ctrl_gap {
            self.closed = true;
            match ctrl.len() {
                0 => {}
                1 => self.violation(
                    ViolationKind::InvalidClosePayload,
                    "close payload of one byte (a code needs two)".into(),
                    em,
                )?,
                _ => {
                    let code = u16::from_be_bytes([ctrl[0], ctrl[1]]);
                    close_code = Some(code);
                    if !close_code_valid(code) {
                        self.violation(
                            ViolationKind::InvalidCloseCode,
                            format!("close code {code} may not be sent"),
                            em,
                        )?;
                    }
                    match std::str::from_utf8(&ctrl[2..]) {
                        Ok(r) => close_reason = Some(r),
                        // Cut inside a character: the whole characters before the cut.
                        Err(e) if truncated && e.error_len().is_none() => {
                            close_reason = std::str::from_utf8(&ctrl[2..2 + e.valid_up_to()]).ok()
                        }
                        Err(_) => {
                            valid_utf8 = false;
                            self.violation(
                                ViolationKind::InvalidUtf8,
                                "close reason is not UTF-8".into(),
                                em,
                            )?;
                        }
                    }
                }
            }
        }
        let msg = Message {
            opcode: op,
            payload: &ctrl,
            len: ctrl_len,
            wire_len,
            compressed: false,
            frames: 1,
            truncated,
            incomplete: ctrl_gap.then_some(Incomplete::Gap),
            missing: Vec::new(),
            resync: self.resync_active,
            valid_utf8,
            text: None,
            close_code,
            close_reason,
        };
        let r = em.emit(self.dir, EventKind::Message(&msg));
        let charged = ctrl.len().saturating_sub(125);
        if charged > 0 {
            mem.refund(Pool::Messages, charged);
        }
        r
    }

    pub(super) fn finish_message(
        &mut self,
        mut m: Box<MsgState>,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        if m.compressed && !m.inflate_dead {
            let inf = m
                .inflater
                .as_mut()
                .expect("a compressed message has an inflater");
            let before = m.buf.len();
            let mut out = Output {
                buf: &mut m.buf,
                keep: m.cap,
                produced: m.len,
                hard_limit: self.limits.max_inflate,
            };
            let r = inf.finish(&mut out);
            m.len = out.produced;
            let grown = m.buf.len() - before;
            let granted = if grown > 0 {
                mem.grant(Pool::Messages, grown)
            } else {
                0
            };
            if granted < grown {
                m.buf.truncate(before + granted);
                m.cap = m.buf.len();
            }
            match r {
                Err(e) => {
                    self.msg = Some(m);
                    self.inflate_failed(e, em)?;
                    m = self.msg.take().expect("message put back above");
                }
                Ok(()) if !self.no_context_takeover() => self.keep_window(&m, mem, em)?,
                Ok(()) => {}
            }
        }
        if m.compressed && m.inflate_dead {
            // Whatever state the window is in, it no longer matches the sender's.
            self.drop_window(mem);
        }
        if let Some(i) = m.inflater.take() {
            i.done();
        }
        let truncated = m.len > m.buf.len() as u64 && m.incomplete.is_none();
        if truncated {
            let (len, kept) = (m.len, m.buf.len());
            let why = if m.cap < self.limits.max_message {
                "the buffer limit for unfinished messages (--max-buffer) was reached".to_string()
            } else {
                format!("--max-message is {}", self.limits.max_message)
            };
            self.violation(
                ViolationKind::MessageTooLarge,
                format!("message of {len} bytes; the first {kept} kept ({why})"),
                em,
            )?;
        }
        let view = MsgView {
            opcode: m.opcode,
            payload: &m.buf,
            len: m.len,
            wire_len: m.wire_len,
            compressed: m.compressed,
            frames: m.frames,
            truncated,
            incomplete: m.incomplete,
            missing: std::mem::take(&mut m.missing),
            resync: m.resync,
        };
        let r = self.emit_message(view, em);
        mem.refund(Pool::Messages, m.buf.len());
        mem.recycle(m.buf);
        r
    }

    /// Moves the compression window past a message that inflated: its output, as far as it
    /// is known, becomes what the next message may refer back to.
    pub(super) fn keep_window(
        &mut self,
        m: &MsgState,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<()> {
        let Some(inf) = m.inflater.as_ref() else {
            return Ok(());
        };
        let (t1, t2) = inf.tail();
        let discarded = inf.discarded();
        // Output between what the message kept and what was discarded is lost when the
        // memory budget cut the message short; the window is then unknown, unless what
        // followed fills it.
        let known =
            m.len == m.buf.len() as u64 + discarded || (t1.len() + t2.len()) >= self.window_max;
        let parts: [&[u8]; 3] = [&m.buf, t1, t2];
        let before = self.window.capacity();
        let need = self.window.needed_after(&parts, self.window_max);
        if !known || !mem.charge(Pool::Compression, need.saturating_sub(before)) {
            self.lose_history(mem);
            return em.emit(self.dir, EventKind::Notice(&Notice::HistoryDropped));
        }
        self.window.extend(&parts, self.window_max);
        let after = self.window.capacity();
        let charged = before.max(need);
        if after > charged {
            mem.force(Pool::Compression, after - charged);
        } else {
            mem.refund(Pool::Compression, charged - after);
        }
        Ok(())
    }

    pub(super) fn emit_message(&mut self, v: MsgView<'_>, em: &mut dyn Emit) -> io::Result<()> {
        let mut payload = v.payload;
        let mut valid_utf8 = true;
        let mut text = None;
        let text_like = matches!(v.opcode, Opcode::Text | Opcode::Continuation);
        if text_like {
            // The one check of a text message's bytes (printers rely on it), so the SIMD one:
            // several times faster than std's on non-ASCII text.
            match simdutf8::compat::from_utf8(payload) {
                Ok(t) => text = Some(t),
                Err(e) if e.error_len().is_none() && (v.truncated || v.incomplete.is_some()) => {
                    // Cut in the middle of a character by a limit, not bad UTF-8.
                    payload = &payload[..e.valid_up_to()];
                    text = std::str::from_utf8(payload).ok();
                }
                Err(_) => {
                    valid_utf8 = false;
                    if v.opcode == Opcode::Text && v.incomplete.is_none() {
                        self.violation(
                            ViolationKind::InvalidUtf8,
                            "text message is not valid UTF-8".into(),
                            em,
                        )?;
                    }
                }
            }
        }
        let msg = Message {
            opcode: v.opcode,
            payload,
            len: v.len,
            wire_len: v.wire_len,
            compressed: v.compressed,
            frames: v.frames,
            truncated: v.truncated,
            incomplete: v.incomplete,
            missing: v.missing,
            resync: v.resync,
            valid_utf8,
            text: text.filter(|_| v.opcode == Opcode::Text),
            close_code: None,
            close_reason: None,
        };
        em.emit(self.dir, EventKind::Message(&msg))
    }
}

/// A finished message, before UTF-8 checking.
pub(super) struct MsgView<'a> {
    pub(super) opcode: Opcode,
    pub(super) payload: &'a [u8],
    pub(super) len: u64,
    pub(super) wire_len: u64,
    pub(super) compressed: bool,
    pub(super) frames: u32,
    pub(super) truncated: bool,
    pub(super) incomplete: Option<Incomplete>,
    pub(super) missing: Vec<(u64, u64)>,
    pub(super) resync: bool,
}

pub(super) fn append(m: &mut MsgState, plain: &[u8], limits: &Limits) -> Result<(), InflateError> {
    m.wire_len += plain.len() as u64;
    if m.compressed {
        if m.inflate_dead {
            return Ok(());
        }
        let Some(inf) = m.inflater.as_mut() else {
            return Ok(());
        };
        let mut out = Output {
            buf: &mut m.buf,
            keep: m.cap,
            produced: m.len,
            hard_limit: limits.max_inflate,
        };
        let r = inf.feed(plain, &mut out);
        m.len = out.produced;
        r
    } else {
        let room = m.cap.saturating_sub(m.buf.len());
        m.buf.extend_from_slice(&plain[..room.min(plain.len())]);
        m.len += plain.len() as u64;
        Ok(())
    }
}
