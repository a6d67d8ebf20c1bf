//! The frame checks: each header judged against RFC 6455 and what the handshake agreed
//! (masking by direction, reserved bits, opcodes, lengths, control-frame rules), every breach
//! reported and decoding carried on.

use super::*;
use crate::event::{Emit, Opcode};
use crate::memory::Memory;
use std::io;

impl WsDecoder {
    /// Validates a header and sets up the frame. Returns false when the frame's payload is
    /// already done with (zero length).
    pub(super) fn start_frame(
        &mut self,
        h: Header,
        at: u64,
        resync: bool,
        mem: &mut Memory,
        em: &mut dyn Emit,
    ) -> io::Result<bool> {
        let op = Opcode::from_u8(h.opcode);
        let mut discard = false;
        if let Some(m) = self.expect_masked {
            if m && h.mask.is_none() {
                self.violation(
                    ViolationKind::UnmaskedClientFrame,
                    format!("frame at offset {at}"),
                    em,
                )?;
            } else if !m && h.mask.is_some() {
                self.violation(
                    ViolationKind::MaskedServerFrame,
                    format!("frame at offset {at}"),
                    em,
                )?;
            }
        }
        if h.non_minimal {
            self.violation(
                ViolationKind::NonMinimalLength,
                format!("length {} in a longer encoding than needed", h.payload_len),
                em,
            )?;
        }
        if h.payload_len >> 63 != 0 {
            self.violation(
                ViolationKind::LengthMsbSet,
                format!(
                    "64-bit length {:#x} has its most significant bit set",
                    h.payload_len
                ),
                em,
            )?;
        }
        let rsv1_ok = matches!(op, Opcode::Text | Opcode::Binary)
            && self.msg.is_none()
            && self.compression != Compression::Off;
        if h.rsv & 0b011 != 0 || (h.rsv & 0b100 != 0 && !rsv1_ok) {
            self.violation(
                ViolationKind::ReservedBits,
                format!("RSV bits {:03b} on a {op} frame", h.rsv),
                em,
            )?;
        }
        if op.is_control() {
            if !h.fin {
                self.violation(
                    ViolationKind::FragmentedControlFrame,
                    format!("{op} without FIN"),
                    em,
                )?;
            }
            if h.payload_len > 125 {
                self.violation(
                    ViolationKind::ControlFrameTooLong,
                    format!("{op} with {} payload bytes (limit 125)", h.payload_len),
                    em,
                )?;
            }
        }
        if self.closed && !matches!(op, Opcode::Close) {
            self.violation(
                ViolationKind::DataAfterClose,
                format!("{op} frame after close"),
                em,
            )?;
        }
        match op {
            Opcode::Reserved(r) => {
                self.violation(ViolationKind::ReservedOpcode, format!("opcode {r:#x}"), em)?;
                discard = true;
            }
            Opcode::Text | Opcode::Binary => {
                if let Some(mut old) = self.msg.take() {
                    self.violation(
                        ViolationKind::ExpectedContinuation,
                        format!(
                            "new {op} message while a {} message was unfinished",
                            old.opcode
                        ),
                        em,
                    )?;
                    old.incomplete.get_or_insert(Incomplete::Gap);
                    self.finish_message(old, mem, em)?;
                }
                if self.resync_active && self.clean_frames >= TRUST_AFTER {
                    self.resync_active = false;
                }
                // RSV1 means compressed only where the 101 agreed permessage-deflate; without
                // it the bit is a violation (above) and the payload is what was sent.
                let compressed = h.rsv & 0b100 != 0 && self.compression != Compression::Off;
                let inflater = compressed.then(|| {
                    let window = (!self.no_context_takeover()).then_some(&self.window);
                    Inflater::start(window, self.window_max)
                });
                self.msg = Some(Box::new(MsgState {
                    opcode: op,
                    compressed,
                    buf: mem.buffer(),
                    len: 0,
                    wire_len: 0,
                    frames: 0,
                    incomplete: None,
                    missing: Vec::new(),
                    resync: self.resync_active || resync,
                    inflate_dead: false,
                    cap: self.limits.max_message,
                    inflater,
                }));
            }
            Opcode::Continuation => {
                if self.msg.is_none() {
                    if resync || self.resync_active {
                        // Joined in the middle of a fragmented message: its start is gone.
                        self.msg = Some(Box::new(MsgState {
                            opcode: Opcode::Continuation,
                            compressed: false,
                            buf: Vec::new(),
                            len: 0,
                            wire_len: 0,
                            frames: 0,
                            incomplete: Some(Incomplete::StartMissing),
                            missing: Vec::new(),
                            resync: true,
                            inflate_dead: false,
                            cap: self.limits.max_message,
                            inflater: None,
                        }));
                    } else {
                        self.violation(
                            ViolationKind::UnexpectedContinuation,
                            "continuation frame with no message in progress".into(),
                            em,
                        )?;
                        discard = true;
                    }
                }
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => {
                self.ctrl = Some(Box::default());
            }
        }
        if let Some(m) = &mut self.msg
            && !op.is_control()
            && !discard
        {
            m.frames += 1;
        }
        self.frame = Some(Box::new(FrameState {
            h,
            remaining: h.payload_len,
            pos: 0,
            stream_offset: at,
            head_wire: [0; 16],
            head_plain: [0; 16],
            head_len: 0,
            resync,
            discard,
        }));
        if h.payload_len == 0 {
            self.end_frame(mem, em)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// This direction's sender resets its compressor after each message.
    pub(super) fn no_context_takeover(&self) -> bool {
        matches!(self.compression, Compression::Deflate(p) if p.no_context_takeover(self.dir))
    }
}

/// RFC 6455 section 7.4: codes an endpoint may put on the wire.
pub(super) fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
