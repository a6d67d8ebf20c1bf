//! Capture filters compiled to classic BPF (the `SO_ATTACH_FILTER` kind), and an interpreter
//! of classic BPF used by the tests to run the programs on packets.
//!
//! The program accepts TCP over IPv4 or IPv6 for which the expression holds, with what
//! tcpdump's `tcp and (EXPR)` would check:
//!
//! * IPv4: protocol 6 in the header; ports are read after the variable-length header (`ldxb
//!   4*([l3]&0xf)`) and only in the first fragment (`frag offset == 0`), so a later fragment
//!   never matches a port test (it may match `host`, as in tcpdump).
//! * IPv6: next header 6 right after the fixed header, or a fragment header (44) followed by
//!   TCP (accepted by `tcp`/`host`/`net`, never by a port test: tcpdump does the same). Other
//!   extension headers are not walked (tcpdump does not either).
//!
//! Link layers: Ethernet (and so Linux loopback, which uses Ethernet framing) including one
//! 802.1Q tag (tcpdump needs the `vlan` keyword for that; on a live Linux socket the kernel
//! has usually removed the tag before the filter runs), raw IP (`ARPHRD_NONE`, LINKTYPE_RAW
//! 101/12/14), LINKTYPE_IPV4/IPV6, Linux cooked SLL (16 bytes) and SLL2 (20 bytes).
//!
//! The expression is compiled once per (link-layer offset, IP version) context with the
//! tests that cannot hold in that context folded away (`ip6 and port 80` costs IPv4 packets
//! one jump). Conditional jumps in classic BPF reach 255 instructions at most; longer ones go
//! through an unconditional `ja` (32-bit offset) placed after some jump, which a whole chain
//! of jumps to the same target shares; so any number of terms compiles, up to the kernel's
//! limit of [`BPF_MAXINSNS`] instructions in all: about 500 separate `--port` values on
//! Ethernet, 1000 when the 802.1Q branch is dropped (which [`compile`] does when it must)
//! or on raw IP and SLL. Consecutive `--port` values count as one range.

use super::{Dir, Expr, Prim, mask32, mask128};
use crate::capture::LinkType;
use std::fmt;
use std::net::IpAddr;

// The fields of `sock_filter::code`, as linux/bpf_common.h and linux/filter.h name them.
/// Instruction class (`code & 0x07`): load into the accumulator A.
pub const BPF_LD: u16 = 0x00;
/// Instruction class: load into the index register X.
pub const BPF_LDX: u16 = 0x01;
/// Instruction class: store A into scratch word `M[k]`.
pub const BPF_ST: u16 = 0x02;
/// Instruction class: store X into scratch word `M[k]`.
pub const BPF_STX: u16 = 0x03;
/// Instruction class: arithmetic on A, with `k` or X as the operand.
pub const BPF_ALU: u16 = 0x04;
/// Instruction class: jump, by `k` or (conditional) by `jt`/`jf`, counted from the next
/// instruction.
pub const BPF_JMP: u16 = 0x05;
/// Instruction class: end the program, keeping that many bytes of the packet (0 drops it).
pub const BPF_RET: u16 = 0x06;
/// Instruction class: move between A and X.
pub const BPF_MISC: u16 = 0x07;
/// Load size (`code & 0x18`): a 32-bit word. Packet loads read big-endian (network order).
pub const BPF_W: u16 = 0x00;
/// Load size: a 16-bit halfword.
pub const BPF_H: u16 = 0x08;
/// Load size: one byte.
pub const BPF_B: u16 = 0x10;
/// Load mode (`code & 0xe0`): the constant `k` itself.
pub const BPF_IMM: u16 = 0x00;
/// Load mode: packet bytes at offset `k`.
pub const BPF_ABS: u16 = 0x20;
/// Load mode: packet bytes at offset X + `k`.
pub const BPF_IND: u16 = 0x40;
/// Load mode: scratch word `M[k]`.
pub const BPF_MEM: u16 = 0x60;
/// Load mode: the packet's length in bytes.
pub const BPF_LEN: u16 = 0x80;
/// Load mode (LDX byte only): X = 4 * (packet byte `k` & 0xf), an IPv4 header's length.
pub const BPF_MSH: u16 = 0xa0;
/// ALU operation (`code & 0xf0`): A + operand.
pub const BPF_ADD: u16 = 0x00;
/// ALU operation: A - operand.
pub const BPF_SUB: u16 = 0x10;
/// ALU operation: A * operand.
pub const BPF_MUL: u16 = 0x20;
/// ALU operation: A / operand (division by zero ends the program with 0).
pub const BPF_DIV: u16 = 0x30;
/// ALU operation: A | operand.
pub const BPF_OR: u16 = 0x40;
/// ALU operation: A & operand.
pub const BPF_AND: u16 = 0x50;
/// ALU operation: A << operand.
pub const BPF_LSH: u16 = 0x60;
/// ALU operation: A >> operand.
pub const BPF_RSH: u16 = 0x70;
/// ALU operation: -A (no operand).
pub const BPF_NEG: u16 = 0x80;
/// ALU operation: A % operand (modulo zero ends the program with 0).
pub const BPF_MOD: u16 = 0x90;
/// ALU operation: A ^ operand.
pub const BPF_XOR: u16 = 0xa0;
/// Jump operation (`code & 0xf0`): always, by `k`.
pub const BPF_JA: u16 = 0x00;
/// Jump operation: to `jt` if A == operand, else to `jf`.
pub const BPF_JEQ: u16 = 0x10;
/// Jump operation: to `jt` if A > operand, else to `jf`.
pub const BPF_JGT: u16 = 0x20;
/// Jump operation: to `jt` if A >= operand, else to `jf`.
pub const BPF_JGE: u16 = 0x30;
/// Jump operation: to `jt` if A & operand != 0, else to `jf`.
pub const BPF_JSET: u16 = 0x40;
/// Operand source (`code & 0x08`; for RET `code & 0x18`): the constant `k`.
pub const BPF_K: u16 = 0x00;
/// Operand source: the index register X.
pub const BPF_X: u16 = 0x08;
/// RET value source: the accumulator A.
pub const BPF_A: u16 = 0x10;
/// MISC operation (`code & 0xf8`): X = A.
pub const BPF_TAX: u16 = 0x00;
/// MISC operation: A = X.
pub const BPF_TXA: u16 = 0x80;
/// The kernel refuses longer classic BPF programs.
pub const BPF_MAXINSNS: usize = 4096;
const BPF_MEMWORDS: u32 = 16;

/// Why no program could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// A link type whose frames the program cannot find the IP header in (see the module
    /// documentation for the ones it can).
    UnsupportedLinkType(LinkType),
    /// The program would be longer than the kernel accepts.
    TooLong {
        /// Instructions the program would have (on Ethernet, the version with the 802.1Q
        /// branch: the one the kernel would have been given).
        len: usize,
    },
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::UnsupportedLinkType(l) => {
                write!(f, "no capture filter for link type {l}")
            }
            CompileError::TooLong { len } => write!(
                f,
                "the capture filter compiles to {len} BPF instructions; the kernel accepts at \
                 most {BPF_MAXINSNS} (fewer ports or terms, or a portrange, would do)"
            ),
        }
    }
}

impl std::error::Error for CompileError {}

// ---------------------------------------------------------------------------------------
// The expression in one context, reduced to loads and comparisons.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Load {
    code: u16,
    k: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Test {
    /// `(A & mask) == value` (`mask` all ones: no `and`).
    Eq { load: Load, mask: u32, value: u32 },
    /// `lo <= A <= hi`.
    Range { load: Load, lo: u32, hi: u32 },
}

impl Test {
    fn load(&self) -> Load {
        match *self {
            Test::Eq { load, .. } | Test::Range { load, .. } => load,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum S {
    Const(bool),
    Test(Test),
    Not(Box<S>),
    And(Vec<S>),
    Or(Vec<S>),
}

#[derive(Clone, Copy, Debug)]
struct Ctx {
    v6: bool,
    /// Offset of the IP header in the frame.
    l3: u32,
    /// Whether the TCP ports can be read (first IPv4 fragment; IPv6 without extension
    /// headers). For IPv4 the X register holds the IP header length.
    ports: bool,
}

fn word(code_size: u16, mode: u16, k: u32) -> Load {
    Load {
        code: BPF_LD | code_size | mode,
        k,
    }
}

fn addr_tests(ctx: Ctx, field_src: bool, addr: IpAddr, prefix: u8) -> S {
    match addr {
        IpAddr::V4(a) => {
            let at = ctx.l3 + if field_src { 12 } else { 16 };
            if prefix == 0 {
                return S::Const(true);
            }
            S::Test(Test::Eq {
                load: word(BPF_W, BPF_ABS, at),
                mask: mask32(prefix),
                value: u32::from(a) & mask32(prefix),
            })
        }
        IpAddr::V6(a) => {
            let at = ctx.l3 + if field_src { 8 } else { 24 };
            let v = u128::from(a) & mask128(prefix);
            let m = mask128(prefix);
            let mut tests = Vec::new();
            for i in 0..4u32 {
                let shift = 96 - 32 * i;
                let wm = (m >> shift) as u32;
                if wm == 0 {
                    continue;
                }
                tests.push(S::Test(Test::Eq {
                    load: word(BPF_W, BPF_ABS, at + 4 * i),
                    mask: wm,
                    value: (v >> shift) as u32,
                }));
            }
            and(tests)
        }
    }
}

fn by_dir(dir: Dir, f: impl Fn(bool) -> S) -> S {
    match dir {
        Dir::Src => f(true),
        Dir::Dst => f(false),
        Dir::Either => or(vec![f(true), f(false)]),
        Dir::Both => and(vec![f(true), f(false)]),
    }
}

fn simplify(e: &Expr, ctx: Ctx) -> S {
    match e {
        Expr::Prim(p) => prim(p, ctx),
        Expr::Not(x) => match simplify(x, ctx) {
            S::Const(b) => S::Const(!b),
            S::Not(y) => *y,
            s => S::Not(Box::new(s)),
        },
        Expr::And(v) => and(v.iter().map(|e| simplify(e, ctx)).collect()),
        Expr::Or(v) => or(v.iter().map(|e| simplify(e, ctx)).collect()),
    }
}

fn prim(p: &Prim, ctx: Ctx) -> S {
    match *p {
        Prim::Tcp => S::Const(true),
        Prim::Ip => S::Const(!ctx.v6),
        Prim::Ip6 => S::Const(ctx.v6),
        Prim::Host { dir, addr } => {
            if addr.is_ipv6() != ctx.v6 {
                return S::Const(false);
            }
            let prefix = if ctx.v6 { 128 } else { 32 };
            by_dir(dir, |src| addr_tests(ctx, src, addr, prefix))
        }
        Prim::Net { dir, net } => {
            if net.addr.is_ipv6() != ctx.v6 {
                return S::Const(false);
            }
            by_dir(dir, |src| addr_tests(ctx, src, net.addr, net.prefix))
        }
        Prim::Port { dir, lo, hi } => {
            if !ctx.ports {
                return S::Const(false);
            }
            by_dir(dir, |src| {
                let off = if src { 0 } else { 2 };
                let load = if ctx.v6 {
                    word(BPF_H, BPF_ABS, ctx.l3 + 40 + off)
                } else {
                    word(BPF_H, BPF_IND, ctx.l3 + off)
                };
                S::Test(if lo == hi {
                    Test::Eq {
                        load,
                        mask: u32::MAX,
                        value: lo.into(),
                    }
                } else {
                    Test::Range {
                        load,
                        lo: lo.into(),
                        hi: hi.into(),
                    }
                })
            })
        }
    }
}

/// Reorders each run of consecutive port tests so that tests of the same port share one
/// load (`port 1 or port 2 or ...` is then one `ldh` and a `jeq` per port and field, not a
/// load per test). Everything else keeps the order it was written in, which is what tcpdump
/// evaluates: on a packet cut short inside the headers, a load past the end rejects the
/// packet at once, so the order of tests decides the verdict. (Inside a run, the order only
/// matters for a packet cut between the source and the destination port.)
fn group(v: &mut [S]) {
    let is_port = |s: &S| matches!(s, S::Test(t) if t.load().code & 0x18 == BPF_H);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && is_port(&v[j]) {
            j += 1;
        }
        if j > i + 1 {
            v[i..j].sort_by_key(|s| match s {
                S::Test(t) => Some(t.load()),
                _ => None,
            });
        }
        i = j.max(i + 1);
    }
}

fn and(children: Vec<S>) -> S {
    let mut v = Vec::new();
    for c in children {
        match c {
            S::Const(true) => {}
            S::Const(false) => return S::Const(false),
            S::And(inner) => v.extend(inner),
            c => v.push(c),
        }
    }
    match v.len() {
        0 => S::Const(true),
        1 => v.pop().unwrap_or(S::Const(true)),
        _ => {
            group(&mut v);
            S::And(v)
        }
    }
}

fn or(children: Vec<S>) -> S {
    let mut v = Vec::new();
    for c in children {
        match c {
            S::Const(false) => {}
            S::Const(true) => return S::Const(true),
            S::Or(inner) => v.extend(inner),
            c => v.push(c),
        }
    }
    match v.len() {
        0 => S::Const(false),
        1 => v.pop().unwrap_or(S::Const(false)),
        _ => {
            group(&mut v);
            S::Or(v)
        }
    }
}

fn uses_x(s: &S) -> bool {
    match s {
        S::Const(_) => false,
        S::Test(t) => t.load().code & 0xe0 == BPF_IND,
        S::Not(x) => uses_x(x),
        S::And(v) | S::Or(v) => v.iter().any(uses_x),
    }
}

// ---------------------------------------------------------------------------------------
// Code generation with symbolic labels.

type Label = usize;

#[derive(Clone, Copy, Debug)]
enum Item {
    Op(u16, u32),
    Jmp {
        code: u16,
        k: u32,
        t: Label,
        f: Label,
    },
    Ja(Label),
    Place(Label),
}

/// What the accumulator holds: a load, masked.
type AVal = Option<(Load, u32)>;

/// The accumulator's content on the jumps into a label.
#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    None,
    Val(AVal),
}

fn meet(a: In, b: AVal) -> In {
    match a {
        In::None => In::Val(b),
        In::Val(x) if x == b => In::Val(x),
        In::Val(_) => In::Val(None),
    }
}

struct Gen {
    items: Vec<Item>,
    incoming: Vec<In>,
    a: AVal,
    /// Whether the current point is reached by falling through.
    live: bool,
}

impl Gen {
    fn label(&mut self) -> Label {
        self.incoming.push(In::None);
        self.incoming.len() - 1
    }

    fn place(&mut self, l: Label) {
        let mut st = self.incoming[l];
        if self.live {
            st = meet(st, self.a);
        }
        self.live = !matches!(st, In::None);
        self.a = match st {
            In::Val(v) => v,
            In::None => None,
        };
        self.items.push(Item::Place(l));
    }

    fn op(&mut self, code: u16, k: u32) {
        match code & 0x07 {
            BPF_LD => self.a = Some((Load { code, k }, u32::MAX)),
            BPF_ALU if code == BPF_ALU | BPF_AND | BPF_K => {
                self.a = self.a.map(|(l, m)| (l, m & k));
            }
            BPF_ALU | BPF_MISC => self.a = None,
            BPF_RET => self.live = false,
            _ => {}
        }
        self.items.push(Item::Op(code, k));
    }

    fn load(&mut self, l: Load, mask: u32) {
        let want = Some((l, mask));
        if self.live && self.a == want {
            return;
        }
        if !(self.live && self.a == Some((l, u32::MAX))) {
            self.op(l.code, l.k);
        }
        if mask != u32::MAX {
            self.op(BPF_ALU | BPF_AND | BPF_K, mask);
        }
    }

    fn ja(&mut self, l: Label) {
        if self.live {
            self.incoming[l] = meet(self.incoming[l], self.a);
            self.items.push(Item::Ja(l));
        }
        self.live = false;
    }

    fn jmp(&mut self, code: u16, k: u32, t: Label, f: Label) {
        if !self.live {
            return;
        }
        if t == f {
            return self.ja(t);
        }
        self.incoming[t] = meet(self.incoming[t], self.a);
        self.incoming[f] = meet(self.incoming[f], self.a);
        self.items.push(Item::Jmp {
            code: BPF_JMP | code | BPF_K,
            k,
            t,
            f,
        });
        self.live = false;
    }

    fn gen_s(&mut self, s: &S, t: Label, f: Label) {
        match s {
            S::Const(true) => self.ja(t),
            S::Const(false) => self.ja(f),
            S::Test(Test::Eq { load, mask, value }) => {
                self.load(*load, *mask);
                self.jmp(BPF_JEQ, *value, t, f);
            }
            S::Test(Test::Range { load, lo, hi }) => {
                self.load(*load, u32::MAX);
                if *lo == 0 {
                    self.jmp(BPF_JGT, *hi, f, t);
                } else if *hi >= 0xffff && load.code & 0x18 == BPF_H {
                    self.jmp(BPF_JGE, *lo, t, f);
                } else {
                    let m = self.label();
                    self.jmp(BPF_JGE, *lo, m, f);
                    self.place(m);
                    self.jmp(BPF_JGT, *hi, f, t);
                }
            }
            S::Not(x) => self.gen_s(x, f, t),
            S::And(v) => {
                let (last, rest) = v.split_last().expect("and of two or more");
                for c in rest {
                    let m = self.label();
                    self.gen_s(c, m, f);
                    self.place(m);
                }
                self.gen_s(last, t, f);
            }
            S::Or(v) => {
                let (last, rest) = v.split_last().expect("or of two or more");
                for c in rest {
                    let m = self.label();
                    self.gen_s(c, t, m);
                    self.place(m);
                }
                self.gen_s(last, t, f);
            }
        }
    }

    /// IPv4 at `l3`, the frame's IP version already checked.
    fn v4(&mut self, e: Option<&Expr>, l3: u32, accept: Label, drop: Label) {
        let simp = |ports| match e {
            None => S::Const(true),
            Some(e) => simplify(
                e,
                Ctx {
                    v6: false,
                    l3,
                    ports,
                },
            ),
        };
        let (first, later) = (simp(true), simp(false));
        if first == S::Const(false) && later == S::Const(false) {
            return self.ja(drop);
        }
        let m = self.label();
        self.op(BPF_LD | BPF_B | BPF_ABS, l3 + 9);
        self.jmp(BPF_JEQ, 6, m, drop);
        self.place(m);
        if first == later {
            return self.gen_s(&first, accept, drop);
        }
        let (lf, ll) = (self.label(), self.label());
        self.op(BPF_LD | BPF_H | BPF_ABS, l3 + 6);
        self.jmp(BPF_JSET, 0x1fff, ll, lf);
        self.place(lf);
        if uses_x(&first) {
            self.op(BPF_LDX | BPF_B | BPF_MSH, l3);
        }
        self.gen_s(&first, accept, drop);
        self.place(ll);
        self.gen_s(&later, accept, drop);
    }

    /// IPv6 at `l3`.
    fn v6(&mut self, e: Option<&Expr>, l3: u32, accept: Label, drop: Label) {
        let simp = |ports| match e {
            None => S::Const(true),
            Some(e) => simplify(
                e,
                Ctx {
                    v6: true,
                    l3,
                    ports,
                },
            ),
        };
        let (direct, frag) = (simp(true), simp(false));
        if direct == S::Const(false) && frag == S::Const(false) {
            return self.ja(drop);
        }
        let (ld, lnot) = (self.label(), self.label());
        self.op(BPF_LD | BPF_B | BPF_ABS, l3 + 6);
        if frag == S::Const(false) {
            self.jmp(BPF_JEQ, 6, ld, drop);
        } else {
            let (lfrag, ltcp) = (self.label(), self.label());
            self.jmp(BPF_JEQ, 6, ld, lnot);
            self.place(lnot);
            self.jmp(BPF_JEQ, 44, lfrag, drop);
            self.place(lfrag);
            self.op(BPF_LD | BPF_B | BPF_ABS, l3 + 40);
            self.jmp(BPF_JEQ, 6, ltcp, drop);
            self.place(ltcp);
            self.gen_s(&frag, accept, drop);
        }
        self.place(ld);
        self.gen_s(&direct, accept, drop);
    }

    /// Dispatch on an ethertype at `at`, IP at `l3`; `vlan`: also one 802.1Q tag.
    fn ethertype(
        &mut self,
        e: Option<&Expr>,
        at: u32,
        l3: u32,
        vlan: bool,
        accept: Label,
        drop: Label,
    ) {
        let (l4, l6, n, lv) = (self.label(), self.label(), self.label(), self.label());
        self.op(BPF_LD | BPF_H | BPF_ABS, at);
        self.jmp(BPF_JEQ, 0x0800, l4, n);
        self.place(n);
        if vlan {
            let n2 = self.label();
            self.jmp(BPF_JEQ, 0x86dd, l6, n2);
            self.place(n2);
            self.jmp(BPF_JEQ, 0x8100, lv, drop);
        } else {
            self.jmp(BPF_JEQ, 0x86dd, l6, drop);
        }
        self.place(l4);
        self.v4(e, l3, accept, drop);
        self.place(l6);
        self.v6(e, l3, accept, drop);
        if vlan {
            self.place(lv);
            self.ethertype(e, at + 4, l3 + 4, false, accept, drop);
        }
    }
}

/// Compiles "TCP over IPv4/IPv6, and `expr` when given" for frames of `linktype`; accepted
/// packets are cut to `snaplen` bytes by the kernel.
///
/// On Ethernet the program also looks inside one 802.1Q tag; when that makes it longer than
/// the kernel accepts, it is compiled without (a live Linux socket sees received frames with
/// the tag already removed, so little is lost).
pub fn compile(
    expr: Option<&Expr>,
    linktype: LinkType,
    snaplen: u32,
) -> Result<Vec<libc::sock_filter>, CompileError> {
    match compile_with(expr, linktype, snaplen, true) {
        Err(CompileError::TooLong { len }) if linktype == LinkType::ETHERNET => {
            compile_with(expr, linktype, snaplen, false).map_err(|e| match e {
                CompileError::TooLong { .. } => CompileError::TooLong { len },
                e => e,
            })
        }
        r => r,
    }
}

fn compile_with(
    expr: Option<&Expr>,
    linktype: LinkType,
    snaplen: u32,
    vlan: bool,
) -> Result<Vec<libc::sock_filter>, CompileError> {
    let mut g = Gen {
        items: Vec::new(),
        incoming: Vec::new(),
        a: None,
        live: true,
    };
    let (accept, drop) = (g.label(), g.label());
    match linktype {
        LinkType::ETHERNET => g.ethertype(expr, 12, 14, vlan, accept, drop),
        LinkType::LINUX_SLL => g.ethertype(expr, 14, 16, false, accept, drop),
        LinkType::LINUX_SLL2 => g.ethertype(expr, 0, 20, false, accept, drop),
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => {
            let (l4, l6, n) = (g.label(), g.label(), g.label());
            g.op(BPF_LD | BPF_B | BPF_ABS, 0);
            g.op(BPF_ALU | BPF_AND | BPF_K, 0xf0);
            g.jmp(BPF_JEQ, 0x40, l4, n);
            g.place(n);
            g.jmp(BPF_JEQ, 0x60, l6, drop);
            g.place(l4);
            g.v4(expr, 0, accept, drop);
            g.place(l6);
            g.v6(expr, 0, accept, drop);
        }
        LinkType::IPV4 => g.v4(expr, 0, accept, drop),
        LinkType::IPV6 => g.v6(expr, 0, accept, drop),
        other => return Err(CompileError::UnsupportedLinkType(other)),
    }
    g.place(accept);
    g.op(BPF_RET | BPF_K, snaplen);
    g.place(drop);
    g.op(BPF_RET | BPF_K, 0);
    let prog = layout(&g.items, g.incoming.len());
    if prog.len() > BPF_MAXINSNS {
        return Err(CompileError::TooLong { len: prog.len() });
    }
    Ok(prog)
}

/// Resolves labels. A conditional jump whose target is more than 255 instructions away
/// jumps instead to a `ja` placed right after it; this only lengthens the program, so the
/// rounds converge.
fn layout(items: &[Item], nlabels: usize) -> Vec<libc::sock_filter> {
    // Jump threading: a label whose first instruction is `ja L2` stands for L2.
    let mut alias: Vec<Label> = (0..nlabels).collect();
    for (i, it) in items.iter().enumerate() {
        if let Item::Place(l) = *it
            && let Some(Item::Ja(l2)) = items[i + 1..].iter().find(|x| !matches!(x, Item::Place(_)))
        {
            alias[l] = *l2;
        }
    }
    let resolve = |mut l: Label| {
        for _ in 0..nlabels {
            if alias[l] == l {
                break;
            }
            l = alias[l];
        }
        l
    };
    let items: Vec<Item> = items
        .iter()
        .map(|it| match *it {
            Item::Ja(l) => Item::Ja(resolve(l)),
            Item::Jmp { t, f, .. } if resolve(t) == resolve(f) => Item::Ja(resolve(t)),
            Item::Jmp { code, k, t, f } => Item::Jmp {
                code,
                k,
                t: resolve(t),
                f: resolve(f),
            },
            x => x,
        })
        .collect();
    // Dead code (after an unconditional transfer, before a label anything jumps to).
    let mut used = vec![false; nlabels];
    for it in &items {
        match *it {
            Item::Ja(l) => used[l] = true,
            Item::Jmp { t, f, .. } => {
                used[t] = true;
                used[f] = true;
            }
            _ => {}
        }
    }
    let mut live = true;
    let mut v: Vec<Item> = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match *it {
            Item::Place(l) => live |= used[l],
            _ if !live => continue,
            Item::Ja(l) => {
                live = false;
                // Drop `ja L` that falls through to L anyway.
                let falls = items[i + 1..]
                    .iter()
                    .take_while(|x| matches!(x, Item::Place(_)))
                    .any(|x| matches!(x, Item::Place(p) if *p == l));
                if falls {
                    continue;
                }
            }
            Item::Jmp { .. } => live = false,
            Item::Op(code, _) if code & 0x07 == BPF_RET => live = false,
            Item::Op(..) => {}
        }
        v.push(*it);
    }
    // Which conditional branches own a trampoline (`ja` right after the jump), and where the
    // other far branches go: a trampoline for the same target at most 255 ahead (one
    // trampoline serves a whole chain of `jeq ... jt accept`).
    let mut own = vec![(false, false); v.len()];
    let mut at = vec![0usize; nlabels];
    let mut via: Vec<(Option<usize>, Option<usize>)> = vec![(None, None); v.len()];
    loop {
        let mut pc = 0;
        let mut pcs = vec![0usize; v.len()];
        // Trampolines by target label: pcs of `ja L` instructions, ascending.
        let mut tramps: Vec<Vec<usize>> = vec![Vec::new(); nlabels];
        for (i, it) in v.iter().enumerate() {
            pcs[i] = pc;
            match *it {
                Item::Place(l) => at[l] = pc,
                Item::Op(..) => pc += 1,
                Item::Ja(l) => {
                    tramps[l].push(pc);
                    pc += 1;
                }
                Item::Jmp { t, f, .. } => {
                    pc += 1;
                    if own[i].0 {
                        tramps[t].push(pc);
                        pc += 1;
                    }
                    if own[i].1 {
                        tramps[f].push(pc);
                        pc += 1;
                    }
                }
            }
        }
        let mut changed = false;
        // Latest jumps first, so that a trampoline added for one serves those before it.
        for i in (0..v.len()).rev() {
            let Item::Jmp { t, f, .. } = v[i] else {
                continue;
            };
            let base = pcs[i] + 1;
            let mut route = |l: Label, owned: &mut bool, tramps: &mut Vec<Vec<usize>>| {
                if *owned || at[l] - base <= 255 {
                    return None;
                }
                let list = &tramps[l];
                let k = list.partition_point(|&q| q < base);
                match list.get(k) {
                    Some(&q) if q - base <= 255 => Some(q),
                    _ => {
                        *owned = true;
                        changed = true;
                        // Provisional position; the next round checks it.
                        let k = tramps[l].partition_point(|&q| q <= base);
                        tramps[l].insert(k, base);
                        None
                    }
                }
            };
            let (mut ot, mut of) = own[i];
            let vt = route(t, &mut ot, &mut tramps);
            let vf = route(f, &mut of, &mut tramps);
            own[i] = (ot, of);
            via[i] = (vt, vf);
        }
        if !changed {
            break;
        }
    }
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut out = Vec::new();
    for (i, it) in v.iter().enumerate() {
        match *it {
            Item::Place(_) => {}
            Item::Op(code, k) => out.push(ins(code, 0, 0, k)),
            Item::Ja(l) => {
                let k = (at[l] - (out.len() + 1)) as u32;
                out.push(ins(BPF_JMP | BPF_JA, 0, 0, k));
            }
            Item::Jmp { code, k, t, f } => {
                let base = out.len() + 1;
                let (ot, of) = own[i];
                let off = |owned: bool, owned_at: usize, via: Option<usize>, l: Label| {
                    let target = if owned {
                        base + owned_at
                    } else {
                        via.unwrap_or(at[l])
                    };
                    u8::try_from(target - base).expect("jump offsets were checked")
                };
                let jt = off(ot, 0, via[i].0, t);
                let jf = off(of, ot as usize, via[i].1, f);
                out.push(ins(code, jt, jf, k));
                for (owned, l) in [(ot, t), (of, f)] {
                    if owned {
                        let k = (at[l] - (out.len() + 1)) as u32;
                        out.push(ins(BPF_JMP | BPF_JA, 0, 0, k));
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Checking and running programs.

/// The checks the kernel makes before attaching a classic BPF program (`bpf_check_classic`):
/// length, known opcodes, jumps inside the program, scratch memory indices, no division by a
/// constant zero, a `ret` at the end.
pub fn validate(prog: &[libc::sock_filter]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > BPF_MAXINSNS {
        return Err(format!("{} instructions", prog.len()));
    }
    for (pc, i) in prog.iter().enumerate() {
        let left = prog.len() - pc - 1;
        let class = i.code & 0x07;
        let ok = match class {
            BPF_LD | BPF_LDX => {
                let mode = i.code & 0xe0;
                let size = i.code & 0x18;
                match mode {
                    BPF_ABS | BPF_IND => class == BPF_LD && size != 0x18,
                    BPF_IMM | BPF_LEN => size == BPF_W,
                    BPF_MEM => size == BPF_W && i.k < BPF_MEMWORDS,
                    BPF_MSH => class == BPF_LDX && size == BPF_B,
                    _ => false,
                }
            }
            BPF_ST | BPF_STX => i.code & !0x07 == 0 && i.k < BPF_MEMWORDS,
            BPF_ALU => {
                let op = i.code & 0xf0;
                let src = i.code & 0x08;
                op <= BPF_XOR && !(src == BPF_K && (op == BPF_DIV || op == BPF_MOD) && i.k == 0)
            }
            BPF_JMP => {
                let op = i.code & 0xf0;
                if op == BPF_JA {
                    (i.k as usize) < left
                } else {
                    op <= BPF_JSET && (i.jt as usize) < left && (i.jf as usize) < left
                }
            }
            BPF_RET => matches!(i.code & 0x18, BPF_K | BPF_A),
            _ => matches!(i.code, 0x07 | 0x87),
        };
        if !ok {
            return Err(format!(
                "instruction {pc}: code {:#x} k {} jt {} jf {}",
                i.code, i.k, i.jt, i.jf
            ));
        }
    }
    match prog.last() {
        Some(i) if i.code & 0x07 == BPF_RET => Ok(()),
        _ => Err("the last instruction is not a ret".into()),
    }
}

/// Runs a classic BPF program on a packet as the kernel does: the return value is how many
/// bytes to keep (0: drop). A load past the end of the packet drops it. Programs that
/// [`validate`] refuses may return anything but never panic.
pub fn run(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; BPF_MEMWORDS as usize];
    let mut pc = 0usize;
    let ld = |at: u64, n: usize| -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        pkt.get(at..at.checked_add(n)?)
            .map(|b| b.iter().fold(0u32, |v, &c| (v << 8) | c as u32))
    };
    let size = |code: u16| match code & 0x18 {
        BPF_W => 4,
        BPF_H => 2,
        _ => 1,
    };
    while let Some(&i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        match i.code & 0x07 {
            BPF_LD => {
                a = match i.code & 0xe0 {
                    BPF_ABS => match ld(k as u64, size(i.code)) {
                        Some(v) => v,
                        None => return 0,
                    },
                    BPF_IND => match ld(x as u64 + k as u64, size(i.code)) {
                        Some(v) => v,
                        None => return 0,
                    },
                    BPF_IMM => k,
                    BPF_LEN => pkt.len() as u32,
                    BPF_MEM => mem[(k % BPF_MEMWORDS) as usize],
                    _ => return 0,
                }
            }
            BPF_LDX => {
                x = match i.code & 0xe0 {
                    BPF_IMM => k,
                    BPF_LEN => pkt.len() as u32,
                    BPF_MEM => mem[(k % BPF_MEMWORDS) as usize],
                    BPF_MSH => match ld(k as u64, 1) {
                        Some(v) => 4 * (v & 0xf),
                        None => return 0,
                    },
                    _ => return 0,
                }
            }
            BPF_ST => mem[(k % BPF_MEMWORDS) as usize] = a,
            BPF_STX => mem[(k % BPF_MEMWORDS) as usize] = x,
            BPF_ALU => {
                let b = if i.code & BPF_X != 0 { x } else { k };
                a = match i.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(b),
                    BPF_SUB => a.wrapping_sub(b),
                    BPF_MUL => a.wrapping_mul(b),
                    BPF_DIV if b == 0 => return 0,
                    BPF_DIV => a / b,
                    BPF_MOD if b == 0 => return 0,
                    BPF_MOD => a % b,
                    BPF_OR => a | b,
                    BPF_AND => a & b,
                    BPF_LSH => a.checked_shl(b).unwrap_or(0),
                    BPF_RSH => a.checked_shr(b).unwrap_or(0),
                    BPF_NEG => a.wrapping_neg(),
                    BPF_XOR => a ^ b,
                    _ => return 0,
                }
            }
            BPF_JMP => {
                let b = if i.code & BPF_X != 0 { x } else { k };
                let cond = match i.code & 0xf0 {
                    BPF_JA => {
                        pc = pc.saturating_add(k as usize);
                        continue;
                    }
                    BPF_JEQ => a == b,
                    BPF_JGT => a > b,
                    BPF_JGE => a >= b,
                    BPF_JSET => a & b != 0,
                    _ => return 0,
                };
                pc += if cond { i.jt } else { i.jf } as usize;
            }
            BPF_RET => {
                return match i.code & 0x18 {
                    BPF_A => a,
                    _ => k,
                };
            }
            _ => match i.code {
                0x07 => x = a,
                0x87 => a = x,
                _ => return 0,
            },
        }
    }
    0
}

/// The program as `tcpdump -d` lists one (for `-d`-style output and for debugging).
pub fn dump(prog: &[libc::sock_filter]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for (pc, i) in prog.iter().enumerate() {
        let k = i.k;
        let sz = match i.code & 0x18 {
            BPF_W => "",
            BPF_H => "h",
            _ => "b",
        };
        let (name, arg): (String, String) = match i.code & 0x07 {
            BPF_LD => match i.code & 0xe0 {
                BPF_ABS => (format!("ld{sz}"), format!("[{k}]")),
                BPF_IND => (format!("ld{sz}"), format!("[x + {k}]")),
                BPF_IMM => ("ld".into(), format!("#{k:#x}")),
                BPF_LEN => ("ld".into(), "#pktlen".into()),
                BPF_MEM => ("ld".into(), format!("M[{k}]")),
                _ => ("unimp".into(), String::new()),
            },
            BPF_LDX => match i.code & 0xe0 {
                BPF_MSH => ("ldxb".into(), format!("4*([{k}]&0xf)")),
                BPF_IMM => ("ldx".into(), format!("#{k:#x}")),
                BPF_LEN => ("ldx".into(), "#pktlen".into()),
                BPF_MEM => ("ldx".into(), format!("M[{k}]")),
                _ => ("unimp".into(), String::new()),
            },
            BPF_ST => ("st".into(), format!("M[{k}]")),
            BPF_STX => ("stx".into(), format!("M[{k}]")),
            BPF_ALU => {
                let op = match i.code & 0xf0 {
                    BPF_ADD => "add",
                    BPF_SUB => "sub",
                    BPF_MUL => "mul",
                    BPF_DIV => "div",
                    BPF_MOD => "mod",
                    BPF_OR => "or",
                    BPF_AND => "and",
                    BPF_LSH => "lsh",
                    BPF_RSH => "rsh",
                    BPF_NEG => "neg",
                    BPF_XOR => "xor",
                    _ => "unimp",
                };
                let arg = if i.code & BPF_X != 0 {
                    "x".into()
                } else {
                    format!("#{k:#x}")
                };
                (op.into(), arg)
            }
            BPF_JMP => {
                let op = match i.code & 0xf0 {
                    BPF_JA => {
                        let _ = writeln!(o, "({pc:03}) {:<8} {}", "ja", pc + 1 + k as usize);
                        continue;
                    }
                    BPF_JEQ => "jeq",
                    BPF_JGT => "jgt",
                    BPF_JGE => "jge",
                    BPF_JSET => "jset",
                    _ => "unimp",
                };
                let arg = if i.code & BPF_X != 0 {
                    "x".to_string()
                } else {
                    format!("#{k:#x}")
                };
                let _ = writeln!(
                    o,
                    "({pc:03}) {op:<8} {arg:<16} jt {}\tjf {}",
                    pc + 1 + i.jt as usize,
                    pc + 1 + i.jf as usize
                );
                continue;
            }
            BPF_RET => (
                "ret".into(),
                if i.code & 0x18 == BPF_A {
                    "a".into()
                } else {
                    format!("#{k}")
                },
            ),
            _ => (
                if i.code == 0x07 { "tax" } else { "txa" }.into(),
                String::new(),
            ),
        };
        let _ = writeln!(o, "({pc:03}) {name:<8} {arg}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::CaptureFilter;
    use super::*;

    const SNAP: u32 = 262_144;

    fn prog(e: &str, lt: LinkType) -> Vec<libc::sock_filter> {
        let p = CaptureFilter::parse(e).unwrap().compile(lt, SNAP).unwrap();
        validate(&p).unwrap_or_else(|m| panic!("{e}: {m}\n{}", dump(&p)));
        p
    }

    /// An IPv4 header of `ihl` words with TCP (or `proto`) ports after it.
    fn v4(proto: u8, frag: u16, ihl: u8, src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut p = vec![0u8; ihl as usize * 4 + 20];
        p[0] = 0x40 | ihl;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        let t = ihl as usize * 4;
        p[t..t + 2].copy_from_slice(&sp.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&dp.to_be_bytes());
        p[t + 12] = 0x50;
        p
    }

    fn v6(next: &[u8], src: &str, dst: &str, sp: u16, dp: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = next[0];
        let s: std::net::Ipv6Addr = src.parse().unwrap();
        let d: std::net::Ipv6Addr = dst.parse().unwrap();
        p[8..24].copy_from_slice(&s.octets());
        p[24..40].copy_from_slice(&d.octets());
        // A fragment header (8 bytes) per further entry of `next`.
        for n in &next[1..] {
            p.extend_from_slice(&[*n, 0, 0, 0, 0, 0, 0, 1]);
        }
        p.extend_from_slice(&sp.to_be_bytes());
        p.extend_from_slice(&dp.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0]);
        p
    }

    fn eth(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(ip);
        p
    }

    fn vlan(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(ip);
        p
    }

    fn sll(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 14];
        p[2..4].copy_from_slice(&772u16.to_be_bytes());
        p.extend_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(ip);
        p
    }

    fn sll2(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0..2].copy_from_slice(&ethertype.to_be_bytes());
        p.extend_from_slice(ip);
        p
    }

    const A: [u8; 4] = [127, 0, 0, 1];
    const B: [u8; 4] = [10, 1, 2, 3];

    /// Each expression against the same packets on every link layer: the BPF verdict must be
    /// the evaluator's on the decoded packet (and what is written here).
    #[test]
    fn programs_agree_with_the_evaluator_on_every_link_layer() {
        let ip_packets: Vec<(&str, u16, Vec<u8>)> = vec![
            ("v4", 0x0800, v4(6, 0, 5, A, B, 5555, 7272)),
            ("v4 rev", 0x0800, v4(6, 0x4000, 5, B, A, 7272, 5555)),
            ("v4 options", 0x0800, v4(6, 0, 7, A, B, 80, 1)),
            ("v4 udp", 0x0800, v4(17, 0, 5, A, B, 7272, 7272)),
            ("v6", 0x86dd, v6(&[6], "::1", "fe80::2", 5555, 7272)),
            ("v6 rev", 0x86dd, v6(&[6], "fe80::2", "::1", 80, 5555)),
            ("v6 udp", 0x86dd, v6(&[17], "::1", "::1", 7272, 7272)),
        ];
        let exprs: &[(&str, &[bool])] = &[
            // v4, v4 rev, v4 options, v4 udp, v6, v6 rev, v6 udp
            ("", &[true, true, true, false, true, true, false]),
            ("port 7272", &[true, true, false, false, true, false, false]),
            (
                "dst port 7272",
                &[true, false, false, false, true, false, false],
            ),
            (
                "src port 80 or 7272",
                &[false, true, true, false, false, true, false],
            ),
            (
                "portrange 7000-8000",
                &[true, true, false, false, true, false, false],
            ),
            (
                "host 127.0.0.1",
                &[true, true, true, false, false, false, false],
            ),
            (
                "src host 127.0.0.1",
                &[true, false, true, false, false, false, false],
            ),
            ("host ::1", &[false, false, false, false, true, true, false]),
            (
                "dst host ::1",
                &[false, false, false, false, false, true, false],
            ),
            (
                "net fe80::/10",
                &[false, false, false, false, true, true, false],
            ),
            (
                "net 10.0.0.0/8 and not port 80",
                &[true, true, false, false, false, false, false],
            ),
            ("ip", &[true, true, true, false, false, false, false]),
            ("ip6", &[false, false, false, false, true, true, false]),
            ("not tcp", &[false; 7]),
            ("src and dst net 127", &[false; 7]),
            (
                "ip6 or port 80",
                &[false, false, true, false, true, true, false],
            ),
        ];
        type Wrap = fn(u16, &[u8]) -> Vec<u8>;
        let links: [(LinkType, Wrap); 6] = [
            (LinkType::ETHERNET, eth),
            (LinkType::ETHERNET, vlan),
            (LinkType::LINUX_SLL, sll),
            (LinkType::LINUX_SLL2, sll2),
            (LinkType::RAW, |_, ip| ip.to_vec()),
            (LinkType::RAW_BSD14, |_, ip| ip.to_vec()),
        ];
        for (e, want) in exprs {
            let f = CaptureFilter::parse(e).unwrap();
            for (lt, wrap) in links {
                let p = prog(e, lt);
                for ((name, et, ip), want) in ip_packets.iter().zip(want.iter()) {
                    let frame = wrap(*et, ip);
                    let got = run(&p, &frame) != 0;
                    assert_eq!(got, *want, "{e:?} on {name} ({lt})\n{}", dump(&p));
                    let eval = crate::packet::decode(lt, &frame)
                        .map(|s| f.matches_segment(&s))
                        .unwrap_or(false);
                    assert_eq!(eval, *want, "evaluator: {e:?} on {name} ({lt})");
                }
            }
        }
        // IPv4-only and IPv6-only link types.
        let p4 = prog("port 7272", LinkType::IPV4);
        assert_eq!(run(&p4, &ip_packets[0].2), SNAP);
        let p6 = prog("host ::1", LinkType::IPV6);
        assert_eq!(run(&p6, &ip_packets[4].2), SNAP);
        // Not IP at all.
        assert_eq!(
            run(&prog("", LinkType::ETHERNET), &eth(0x0806, &[0; 28])),
            0
        );
    }

    #[test]
    fn fragments() {
        let p = prog("port 7272", LinkType::ETHERNET);
        let h = prog("host 10.1.2.3", LinkType::ETHERNET);
        // First fragment (MF set, offset 0): ports are there.
        let first = eth(0x0800, &v4(6, 0x2000, 5, A, B, 1, 7272));
        assert_eq!(run(&p, &first), SNAP);
        // A later fragment: its "ports" are payload; no port test matches, host tests do
        // (as with tcpdump's `tcp and host ...`).
        let later = eth(0x0800, &v4(6, 0x00b9, 5, A, B, 7272, 7272));
        assert_eq!(run(&p, &later), 0);
        assert_eq!(run(&h, &later), SNAP);
        assert_eq!(run(&prog("not port 1", LinkType::ETHERNET), &later), SNAP);
        // IPv6 with a fragment header before TCP: `tcp`/`host` yes, ports no (like tcpdump).
        let f6 = eth(0x86dd, &v6(&[44, 6], "::1", "::1", 7272, 7272));
        assert_eq!(run(&prog("", LinkType::ETHERNET), &f6), SNAP);
        assert_eq!(run(&prog("host ::1", LinkType::ETHERNET), &f6), SNAP);
        assert_eq!(run(&p, &f6), 0);
        // IPv6 hop-by-hop first: not walked.
        let hbh = eth(0x86dd, &v6(&[0, 6], "::1", "::1", 7272, 7272));
        assert_eq!(run(&prog("", LinkType::ETHERNET), &hbh), 0);
    }

    #[test]
    fn truncated_packets_are_dropped_not_panicking() {
        let p = prog("port 7272 or host 10.9.9.9", LinkType::ETHERNET);
        let full = eth(0x0800, &v4(6, 0, 5, A, B, 1, 7272));
        for n in 0..full.len() {
            let _ = run(&p, &full[..n]);
        }
        assert_eq!(run(&p, &full[..36]), 0, "cut inside the ports");
        assert_eq!(run(&p, &full), SNAP);
    }

    #[test]
    fn many_ports_use_long_jumps() {
        let ports: Vec<u16> = (0..200).map(|i| 1000 + 3 * i).collect();
        for lt in [LinkType::ETHERNET, LinkType::RAW, LinkType::LINUX_SLL] {
            let p = CaptureFilter::ports(&ports).compile(lt, SNAP).unwrap();
            validate(&p).unwrap();
            assert!(p.len() <= BPF_MAXINSNS);
            assert!(p.iter().any(|i| i.code == BPF_JMP | BPF_JA), "long jumps");
            let wrap = |ip: Vec<u8>| match lt {
                LinkType::ETHERNET => eth(0x0800, &ip),
                LinkType::LINUX_SLL => sll(0x0800, &ip),
                _ => ip,
            };
            for port in [999u16, 1000, 1001, 1003, 1300, 1597, 1600, 7272] {
                let want = ports.contains(&port);
                let pk = wrap(v4(6, 0, 5, A, B, port, 5));
                assert_eq!(run(&p, &pk) != 0, want, "sport {port}");
                let pk = wrap(v4(6, 0, 5, A, B, 5, port));
                assert_eq!(run(&p, &pk) != 0, want, "dport {port}");
            }
        }
        // 700 ports fit on Ethernet only without the 802.1Q branch: it is left out.
        let seven: Vec<u16> = (0..700).map(|i| 2 * i + 1).collect();
        let p = CaptureFilter::ports(&seven)
            .compile(LinkType::ETHERNET, SNAP)
            .unwrap();
        assert!(!dump(&p).contains("#0x8100"));
        assert!(dump(&prog("port 80", LinkType::ETHERNET)).contains("#0x8100"));
        let many: Vec<u16> = (0..5000).map(|i| 2 * i + 1).collect();
        assert!(matches!(
            CaptureFilter::ports(&many).compile(LinkType::ETHERNET, SNAP),
            Err(CompileError::TooLong { .. })
        ));
        // Consecutive ports are one range.
        let run: Vec<u16> = (1..=5000).collect();
        assert!(
            CaptureFilter::ports(&run)
                .compile(LinkType::ETHERNET, SNAP)
                .unwrap()
                .len()
                < 60
        );
    }

    #[test]
    fn shared_loads_and_folding() {
        // No expression: the fixed TCP check only.
        let all = prog("", LinkType::RAW);
        assert!(all.len() <= 13, "{}", dump(&all));
        // `ip6` folds away the IPv4 branch entirely.
        let p = prog("ip6 and port 80", LinkType::LINUX_SLL);
        assert!(!dump(&p).contains("ldxb"), "{}", dump(&p));
        // Three ports on one field share one load.
        let p = prog("src port 1 or 2 or 3", LinkType::IPV6);
        assert_eq!(
            p.iter()
                .filter(|i| i.code == BPF_LD | BPF_H | BPF_ABS)
                .count(),
            1
        );
    }

    #[test]
    fn interpreter_basics_and_validation() {
        let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        // A = len; X = A; A = 3; A += X; ret A
        let p = [
            ins(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0),
            ins(BPF_MISC | BPF_TAX, 0, 0, 0),
            ins(BPF_LD | BPF_IMM, 0, 0, 3),
            ins(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0),
            ins(BPF_ST, 0, 0, 2),
            ins(BPF_LDX | BPF_MEM, 0, 0, 2),
            ins(BPF_MISC | BPF_TXA, 0, 0, 0),
            ins(BPF_RET | BPF_A, 0, 0, 0),
        ];
        validate(&p).unwrap();
        assert_eq!(run(&p, &[0; 10]), 13);
        assert!(validate(&[ins(BPF_JMP | BPF_JA, 0, 0, 5), ins(BPF_RET, 0, 0, 0)]).is_err());
        assert!(
            validate(&[
                ins(BPF_ALU | BPF_DIV | BPF_K, 0, 0, 0),
                ins(BPF_RET, 0, 0, 0)
            ])
            .is_err()
        );
        assert!(validate(&[ins(BPF_LD | BPF_IMM, 0, 0, 0)]).is_err());
        assert!(validate(&[]).is_err());
        // A runaway program ends instead of panicking.
        assert_eq!(run(&[ins(BPF_JMP | BPF_JA, 0, 0, u32::MAX)], &[]), 0);
        assert_eq!(
            run(&[ins(BPF_LD | BPF_W | BPF_ABS, 0, 0, u32::MAX)], &[1; 8]),
            0
        );
        assert!(dump(&prog("port 80", LinkType::ETHERNET)).contains("ldxb     4*([14]&0xf)"));
    }

    /// Deterministic xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const PORTS: [u16; 5] = [80, 443, 7272, 7273, 40000];
    const ADDRS: [&str; 5] = ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "10.200.0.1"];

    fn random_prim(r: &mut Rng) -> Prim {
        let dir = [Dir::Src, Dir::Dst, Dir::Either, Dir::Both][r.below(4) as usize];
        let addr: IpAddr = ADDRS[r.below(5) as usize].parse().unwrap();
        match r.below(7) {
            0 => [Prim::Tcp, Prim::Ip, Prim::Ip6][r.below(3) as usize],
            1 | 2 => {
                let p = PORTS[r.below(5) as usize];
                Prim::Port { dir, lo: p, hi: p }
            }
            3 => {
                let a = PORTS[r.below(5) as usize];
                let b = PORTS[r.below(5) as usize];
                Prim::Port {
                    dir,
                    lo: a.min(b),
                    hi: a.max(b),
                }
            }
            4 => Prim::Host { dir, addr },
            _ => {
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = r.below(max + 1) as u8;
                let addr = match addr {
                    IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
                    IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
                };
                Prim::Net {
                    dir,
                    net: super::super::Net { addr, prefix },
                }
            }
        }
    }

    fn random_expr(r: &mut Rng, depth: u32) -> Expr {
        if depth == 0 || r.below(4) == 0 {
            return Expr::Prim(random_prim(r));
        }
        match r.below(5) {
            0 => Expr::Not(Box::new(random_expr(r, depth - 1))),
            k => {
                // Now and then a wide list, for long jumps.
                let n = if r.below(8) == 0 {
                    20 + r.below(60)
                } else {
                    2 + r.below(3)
                };
                let v = (0..n).map(|_| random_expr(r, depth - 1)).collect();
                if k % 2 == 0 {
                    Expr::And(v)
                } else {
                    Expr::Or(v)
                }
            }
        }
    }

    /// Random expressions, random packets, every link layer: the compiled program says what
    /// the evaluator says on the decoded packet (no tcpdump needed).
    #[test]
    fn random_programs_agree_with_the_evaluator() {
        let mut r = Rng(0x0123_4567_89ab_cdef);
        let addr4 = |a: &str| a.parse::<std::net::Ipv4Addr>().map(|a| a.octets());
        let mut packets = Vec::new();
        for _ in 0..60 {
            let (s, d) = (ADDRS[r.below(5) as usize], ADDRS[r.below(5) as usize]);
            let (sp, dp) = (PORTS[r.below(5) as usize], PORTS[r.below(5) as usize]);
            match (addr4(s), addr4(d)) {
                (Ok(s4), Ok(d4)) => {
                    let opts = r.below(3) as u8 * 2;
                    packets.push((0x0800, v4(6, 0x4000, 5 + opts, s4, d4, sp, dp)));
                }
                _ => {
                    let s6 = if s.contains(':') { s } else { "::1" };
                    let d6 = if d.contains(':') { d } else { "fe80::1" };
                    packets.push((0x86dd, v6(&[6], s6, d6, sp, dp)));
                }
            }
        }
        type Wrap = fn(u16, &[u8]) -> Vec<u8>;
        let links: [(LinkType, Wrap); 5] = [
            (LinkType::ETHERNET, eth),
            (LinkType::ETHERNET, vlan),
            (LinkType::LINUX_SLL, sll),
            (LinkType::LINUX_SLL2, sll2),
            (LinkType::RAW, |_, ip| ip.to_vec()),
        ];
        let mut long = 0;
        for _ in 0..300 {
            let e = random_expr(&mut r, 4);
            let f = CaptureFilter { expr: Some(e) };
            for (lt, wrap) in links {
                let prog = match f.compile(lt, SNAP) {
                    Ok(p) => p,
                    Err(CompileError::TooLong { .. }) => continue,
                    Err(e) => panic!("{e}"),
                };
                validate(&prog).unwrap_or_else(|m| panic!("{f}: {m}"));
                long += prog.iter().any(|i| i.code == BPF_JMP | BPF_JA) as usize;
                for (et, ip) in &packets {
                    let frame = wrap(*et, ip);
                    let seg = crate::packet::decode(lt, &frame).unwrap();
                    assert_eq!(
                        run(&prog, &frame) != 0,
                        f.matches_segment(&seg),
                        "{f} on {} -> {} ({lt})",
                        seg.src,
                        seg.dst
                    );
                }
            }
        }
        assert!(long > 10, "too few programs with long jumps: {long}");
    }

    /// The kernel's own checker accepts the programs: attaching a filter to any socket
    /// (here a UDP one, no privilege needed) runs it.
    #[test]
    fn the_kernel_accepts_the_programs() {
        let attach = |prog: &[libc::sock_filter]| -> std::io::Result<()> {
            // SAFETY: plain socket(2); the fd is closed below.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
            assert!(fd >= 0);
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: fprog points to prog, alive for the call.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ATTACH_FILTER,
                    (&fprog as *const libc::sock_fprog).cast(),
                    std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
                )
            };
            let res = if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            };
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
            res
        };
        let ports: Vec<u16> = (0..450).map(|i| 2 * i + 1).collect();
        let seven: Vec<u16> = (0..700).map(|i| 2 * i + 1).collect();
        let mut progs = vec![
            CaptureFilter::ports(&seven)
                .compile(LinkType::ETHERNET, SNAP)
                .unwrap(),
            CaptureFilter::ports(&ports)
                .compile(LinkType::ETHERNET, SNAP)
                .unwrap(),
            CaptureFilter::ports(&ports)
                .compile(LinkType::RAW, SNAP)
                .unwrap(),
        ];
        for e in [
            "",
            "port 80",
            "host 127.0.0.1 and (port 80 or 7272)",
            "not ip6 net fe80::/10 or src and dst portrange 1000-2000",
        ] {
            for lt in [LinkType::ETHERNET, LinkType::LINUX_SLL, LinkType::RAW] {
                progs.push(prog(e, lt));
            }
        }
        let mut r = Rng(42);
        for _ in 0..100 {
            let f = CaptureFilter {
                expr: Some(random_expr(&mut r, 4)),
            };
            if let Ok(p) = f.compile(LinkType::ETHERNET, SNAP) {
                progs.push(p);
            }
        }
        assert!(progs[1].len() > 3000, "{}", progs[1].len());
        for p in &progs {
            attach(p).unwrap_or_else(|e| panic!("kernel refused:\n{}\n{e}", dump(p)));
        }
        // And it does refuse a bad one.
        let bad = [libc::sock_filter {
            code: BPF_JMP | BPF_JA,
            jt: 0,
            jf: 0,
            k: 5,
        }];
        assert!(attach(&bad).is_err());
    }
}
