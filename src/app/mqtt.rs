//! MQTT 3.1, 3.1.1 and 5.0 on websocket (binary messages). A websocket message may carry part
//! of a packet or several packets: each direction keeps a bounded reassembly buffer, and the
//! part of a packet too large for it is skipped (its start is still read).
//!
//! Passwords are never shown; v5 properties are parsed to skip them exactly, and the reason
//! string, user properties, assigned client id and topic alias are shown.

use super::{Annotator, AppMessage, PREVIEW, Reading, Side, clip, finish, preview_bytes};
use serde_json::{Map, Value, json};

/// Longest packet kept whole across websocket messages; longer ones are read from their
/// first part.
const BUF_MAX: usize = 64 * 1024;
/// How much of a packet too large to keep is gathered before it is read.
const HEAD: usize = 4096;
/// Topic aliases remembered per direction.
const ALIASES_MAX: usize = 64;
/// Packets read from one websocket message.
const PACKETS_MAX: usize = 64;

const TYPES: [&str; 16] = [
    "reserved",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// An MQTT CONNECT packet, whole, at the start of `b`.
pub fn is_connect(b: &[u8]) -> bool {
    if b.first() != Some(&0x10) {
        return false;
    }
    let Some((rem, n)) = varint(&b[1..]).ok().flatten() else {
        return false;
    };
    let body = &b[1 + n..];
    let mut c = Cur { b: body, i: 0 };
    body.len() >= rem as usize
        && matches!(c.string().as_deref(), Some("MQTT" | "MQIsdp"))
        && c.u8().is_some_and(|l| matches!(l, 3..=5))
}

/// The remaining-length varint at the start of `b`: Ok(None) when it is cut short,
/// Err when malformed (more than 4 bytes).
fn varint(b: &[u8]) -> Result<Option<(u32, usize)>, ()> {
    let mut v: u32 = 0;
    for i in 0..4 {
        let Some(&x) = b.get(i) else {
            return Ok(None);
        };
        v |= u32::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Err(())
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.i
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn varint(&mut self) -> Option<u32> {
        let (v, n) = varint(&self.b[self.i..]).ok()??;
        self.i += n;
        Some(v)
    }
    fn binary(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n.into())
    }
    fn string(&mut self) -> Option<String> {
        // Lossy: a peer's bad UTF-8 is shown, not a reason to give up on the packet.
        self.binary()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = &self.b[self.i..];
        self.i = self.b.len();
        r
    }
}

/// The v5 properties worth showing.
#[derive(Default)]
struct Props {
    reason: Option<String>,
    user: Vec<(String, String)>,
    assigned_id: Option<String>,
    topic_alias: Option<u16>,
    count: usize,
}

impl Props {
    fn parse(c: &mut Cur<'_>) -> Option<Props> {
        let len = c.varint()? as usize;
        let mut p = Cur {
            b: c.take(len)?,
            i: 0,
        };
        let mut out = Props::default();
        while p.left() > 0 {
            let id = p.varint()?;
            out.count += 1;
            match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    p.u8()?;
                }
                0x13 | 0x21 | 0x22 => {
                    p.u16()?;
                }
                0x23 => out.topic_alias = Some(p.u16()?),
                0x02 | 0x11 | 0x18 | 0x27 => {
                    p.u32()?;
                }
                0x0B => {
                    p.varint()?;
                }
                0x03 | 0x08 | 0x15 | 0x1A | 0x1C => {
                    p.string()?;
                }
                0x09 | 0x16 => {
                    p.binary()?;
                }
                0x12 => out.assigned_id = Some(clip(&p.string()?, 200)),
                0x1F => out.reason = Some(clip(&p.string()?, PREVIEW)),
                0x26 => {
                    let (k, v) = (p.string()?, p.string()?);
                    if out.user.len() < 8 {
                        out.user.push((clip(&k, 100), clip(&v, 100)));
                    }
                }
                _ => return None,
            }
        }
        Some(out)
    }

    fn describe(&self, t: &mut String, j: &mut Map<String, Value>) {
        if let Some(r) = &self.reason {
            t.push_str(&format!(" reason \"{r}\""));
            j.insert("reason_string".into(), r.clone().into());
        }
        if let Some(a) = &self.assigned_id {
            t.push_str(&format!(" assigned client \"{a}\""));
            j.insert("assigned_client_id".into(), a.clone().into());
        }
        if !self.user.is_empty() {
            let u: Vec<String> = self.user.iter().map(|(k, v)| format!("{k}={v}")).collect();
            t.push_str(&format!(" [{}]", u.join(", ")));
            let m: Map<String, Value> = self
                .user
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            j.insert("user_properties".into(), m.into());
        }
    }
}

fn connack_code(c: u8) -> &'static str {
    match c {
        0 => "accepted",
        1 => "refused: unacceptable protocol version",
        2 => "refused: identifier rejected",
        3 => "refused: server unavailable",
        4 => "refused: bad user name or password",
        5 => "refused: not authorized",
        _ => "refused",
    }
}

fn reason_code(c: u8) -> &'static str {
    match c {
        0x00 => "success",
        0x01 => "granted qos1",
        0x02 => "granted qos2",
        0x04 => "disconnect with will message",
        0x10 => "no matching subscribers",
        0x11 => "no subscription existed",
        0x18 => "continue authentication",
        0x19 => "re-authenticate",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8B => "server shutting down",
        0x8C => "bad authentication method",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x8F => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "qos not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9E => "shared subscriptions not supported",
        0x9F => "connection rate exceeded",
        0xA0 => "maximum connect time",
        0xA1 => "subscription identifiers not supported",
        0xA2 => "wildcard subscriptions not supported",
        _ => "unknown",
    }
}

#[derive(Default)]
struct Direction {
    /// The start of a packet that the next messages continue.
    buf: Vec<u8>,
    /// Bytes still to come of a packet too large to keep.
    skip: usize,
    /// The packet type being skipped, for the readings of the messages it spans.
    skipping: u8,
    /// v5 topic aliases this side set.
    aliases: Vec<(u16, String)>,
}

/// The [`Annotator`] for MQTT over websocket: one per connection, since it reassembles
/// packets across messages and learns the protocol level from CONNECT / CONNACK.
pub struct Mqtt {
    /// Protocol level: 3 (3.1), 4 (3.1.1), 5 (5.0); None until a CONNECT or CONNACK tells.
    level: Option<u8>,
    dirs: [Direction; 2],
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt::new()
    }
}

/// One packet's reading.
struct Packet {
    text: String,
    json: Map<String, Value>,
    heartbeat: bool,
    pairing: Option<(String, bool)>,
    names: Option<String>,
}

fn who(s: Side) -> &'static str {
    match s {
        Side::Client => "c",
        Side::Server => "s",
    }
}

fn other(s: Side) -> Side {
    match s {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

impl Mqtt {
    /// A reader that knows no protocol level yet (v5 properties are parsed once CONNECT or
    /// CONNACK says level 5).
    pub fn new() -> Mqtt {
        Mqtt {
            level: None,
            dirs: Default::default(),
        }
    }

    fn v5(&self) -> bool {
        self.level == Some(5)
    }

    /// Reads one packet: `first` is the fixed header's first byte, `body` what follows the
    /// remaining length (all of it, or the first part when `cut`). None: not MQTT.
    fn packet(&mut self, side: Side, first: u8, body: &[u8], cut: bool) -> Option<Packet> {
        let ty = first >> 4;
        let flags = first & 0x0f;
        let name = TYPES[usize::from(ty)];
        let ok_flags = match ty {
            0 => return None,
            3 => (flags >> 1) & 3 != 3,
            6 | 8 | 10 => flags == 2,
            _ => flags == 0,
        };
        if !ok_flags {
            return None;
        }
        let mut c = Cur { b: body, i: 0 };
        let mut t = name.to_string();
        let mut j = Map::new();
        j.insert("protocol".into(), "mqtt".into());
        j.insert("type".into(), name.to_ascii_lowercase().into());
        let mut p = Packet {
            text: String::new(),
            json: Map::new(),
            heartbeat: false,
            pairing: None,
            names: None,
        };
        let v5 = self.v5();
        match ty {
            1 => {
                let proto = c.string()?;
                let level = c.u8()?;
                if !matches!(proto.as_str(), "MQTT" | "MQIsdp") || !matches!(level, 3..=5) {
                    return None;
                }
                self.level = Some(level);
                let f = c.u8()?;
                let keep = c.u16()?;
                let props = if level == 5 {
                    Some(Props::parse(&mut c)?)
                } else {
                    None
                };
                let id = c.string()?;
                let version = match level {
                    3 => "3.1",
                    4 => "3.1.1",
                    _ => "5.0",
                };
                t.push_str(&format!(
                    " v{version} client \"{}\" keep-alive {keep}s",
                    clip(&id, 200)
                ));
                j.insert("version".into(), version.into());
                j.insert("client_id".into(), clip(&id, 200).into());
                j.insert("keep_alive".into(), keep.into());
                let clean = f & 0x02 != 0;
                j.insert("clean_session".into(), clean.into());
                if clean {
                    t.push_str(if level == 5 {
                        " clean-start"
                    } else {
                        " clean-session"
                    });
                }
                if f & 0x04 != 0 {
                    if level == 5 {
                        Props::parse(&mut c)?;
                    }
                    let topic = c.string()?;
                    c.binary()?;
                    let qos = (f >> 3) & 3;
                    t.push_str(&format!(" will \"{}\" qos{qos}", clip(&topic, 200)));
                    if f & 0x20 != 0 {
                        t.push_str(" retain");
                    }
                    j.insert("will_topic".into(), clip(&topic, 200).into());
                }
                if f & 0x80 != 0 {
                    let user = c.string()?;
                    t.push_str(&format!(" user \"{}\"", clip(&user, 200)));
                    j.insert("username".into(), clip(&user, 200).into());
                }
                if f & 0x40 != 0 {
                    // Never shown: only that there is one.
                    c.binary()?;
                    t.push_str(" password");
                    j.insert("password".into(), true.into());
                }
                if let Some(pr) = props {
                    pr.describe(&mut t, &mut j);
                }
                if !id.is_empty() {
                    p.names = Some(clip(&id, 200));
                }
            }
            2 => {
                let f = c.u8()?;
                let code = c.u8()?;
                if self.level.is_none() {
                    self.level = Some(if body.len() > 2 { 5 } else { 4 });
                }
                if f & 1 != 0 {
                    t.push_str(" session-present");
                }
                j.insert("session_present".into(), (f & 1 != 0).into());
                j.insert("code".into(), code.into());
                if self.v5() {
                    t.push_str(&format!(" {}", reason_code(code)));
                    if !cut {
                        let pr = Props::parse(&mut c)?;
                        pr.describe(&mut t, &mut j);
                        if let Some(a) = pr.assigned_id {
                            p.names = Some(a);
                        }
                    }
                } else {
                    t.push_str(&format!(" {}", connack_code(code)));
                }
            }
            3 => {
                let qos = (flags >> 1) & 3;
                let mut topic = c.string()?;
                let pid = if qos > 0 { Some(c.u16()?) } else { None };
                let mut props_text = String::new();
                if v5 {
                    let pr = Props::parse(&mut c)?;
                    if let Some(a) = pr.topic_alias {
                        let al = &mut self.dirs[side.index()].aliases;
                        if topic.is_empty() {
                            topic = al
                                .iter()
                                .find(|(k, _)| *k == a)
                                .map_or_else(|| format!("<alias {a}>"), |(_, v)| v.clone());
                        } else {
                            al.retain(|(k, _)| *k != a);
                            if al.len() >= ALIASES_MAX {
                                al.remove(0);
                            }
                            al.push((a, clip(&topic, 500)));
                        }
                        j.insert("topic_alias".into(), a.into());
                    }
                    pr.describe(&mut props_text, &mut j);
                }
                let payload = c.rest();
                t = format!("{name} {} qos{qos}", clip(&topic, 300));
                j.insert("topic".into(), clip(&topic, 300).into());
                j.insert("qos".into(), qos.into());
                if let Some(id) = pid {
                    t.push_str(&format!(" id {id}"));
                    j.insert("packet_id".into(), id.into());
                    p.pairing = Some((format!("{}:{id}", who(side)), true));
                }
                if flags & 1 != 0 {
                    t.push_str(" retain");
                }
                if flags & 8 != 0 {
                    t.push_str(" dup");
                }
                j.insert("retain".into(), (flags & 1 != 0).into());
                j.insert("dup".into(), (flags & 8 != 0).into());
                t.push_str(&props_text);
                let preview = preview_bytes(payload, PREVIEW);
                if cut {
                    t.push_str(&format!(" {preview} (first {} bytes)", payload.len()));
                } else {
                    t.push_str(&format!(" {preview}"));
                    j.insert("payload_len".into(), payload.len().into());
                }
                j.insert("payload".into(), preview.into());
            }
            4..=7 => {
                let id = c.u16()?;
                t.push_str(&format!(" {id}"));
                j.insert("packet_id".into(), id.into());
                if v5 && c.left() > 0 {
                    let code = c.u8()?;
                    t.push_str(&format!(" {}", reason_code(code)));
                    j.insert("code".into(), code.into());
                    if c.left() > 0 {
                        Props::parse(&mut c)?.describe(&mut t, &mut j);
                    }
                }
                // PUBACK/PUBREC answer a PUBLISH, PUBCOMP a PUBREL: the asker is the other
                // side, except for PUBREL, which the publisher sends.
                p.pairing = Some(match ty {
                    4 | 5 => (format!("{}:{id}", who(other(side))), false),
                    6 => (format!("{}:{id}:rel", who(side)), true),
                    _ => (format!("{}:{id}:rel", who(other(side))), false),
                });
            }
            8 | 10 => {
                let id = c.u16()?;
                if v5 {
                    Props::parse(&mut c)?.describe(&mut t, &mut j);
                }
                let extra = t[name.len()..].to_string();
                t = format!("{name} {id}");
                let mut filters = Vec::new();
                let mut shown = Vec::new();
                while c.left() > 0 {
                    let f = clip(&c.string()?, 300);
                    if ty == 8 {
                        let o = c.u8()?;
                        let qos = o & 3;
                        if shown.len() < 16 {
                            shown.push(format!("{f} qos{qos}"));
                        }
                        filters.push(json!({"topic": f, "qos": qos}));
                    } else {
                        if shown.len() < 16 {
                            shown.push(f.clone());
                        }
                        filters.push(Value::String(f));
                    }
                    if filters.len() > 64 {
                        break;
                    }
                }
                if filters.is_empty() && !cut {
                    return None;
                }
                t.push(' ');
                t.push_str(&shown.join(", "));
                if filters.len() > shown.len() {
                    t.push_str(&format!(", … ({} in all)", filters.len()));
                }
                t.push_str(&extra);
                j.insert("packet_id".into(), id.into());
                j.insert("topics".into(), filters.into());
                p.pairing = Some((format!("c:{id}"), true));
            }
            9 | 11 => {
                let id = c.u16()?;
                if v5 {
                    Props::parse(&mut c)?.describe(&mut t, &mut j);
                }
                let extra = t[name.len()..].to_string();
                t = format!("{name} {id}");
                let codes: Vec<u8> = c.rest().iter().copied().take(64).collect();
                if !codes.is_empty() {
                    let shown: Vec<String> = codes
                        .iter()
                        .map(|&x| match (ty, x, v5) {
                            (9, 0..=2, _) => format!("qos{x}"),
                            (9, 0x80, false) => "failure".into(),
                            _ => reason_code(x).into(),
                        })
                        .collect();
                    t.push(' ');
                    t.push_str(&shown.join(", "));
                }
                t.push_str(&extra);
                j.insert("packet_id".into(), id.into());
                j.insert("codes".into(), codes.into());
                p.pairing = Some((format!("c:{id}"), false));
            }
            12 | 13 => {
                if !body.is_empty() {
                    return None;
                }
                p.heartbeat = true;
                p.pairing = Some(("ping".into(), ty == 12));
            }
            14 | 15 => {
                if c.left() > 0 {
                    if !v5 && ty == 14 {
                        return None;
                    }
                    let code = c.u8()?;
                    t.push_str(&format!(" {}", reason_code(code)));
                    j.insert("code".into(), code.into());
                    if c.left() > 0 {
                        Props::parse(&mut c)?.describe(&mut t, &mut j);
                    }
                }
            }
            _ => return None,
        }
        if !cut && c.left() > 0 && !matches!(ty, 3 | 9 | 11) {
            // Bytes past what the packet holds: not the packet we thought it was.
            return None;
        }
        p.text = t;
        p.json = j;
        Some(p)
    }
}

impl Annotator for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn read(&mut self, m: &AppMessage<'_>) -> Option<Reading> {
        if !m.binary {
            return None;
        }
        let side = m.side;
        let mut data = m.payload;
        let mut packets: Vec<Packet> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        {
            let d = &mut self.dirs[side.index()];
            if d.skip > 0 {
                let n = d.skip.min(data.len());
                d.skip -= n;
                data = &data[n..];
                let name = TYPES[usize::from(d.skipping)];
                notes.push(if d.skip > 0 {
                    format!("{name} continues ({n} bytes, {} to come)", d.skip)
                } else {
                    format!("{name} continues ({n} bytes, its end)")
                });
            }
        }
        let joined;
        let work: &[u8] = if self.dirs[side.index()].buf.is_empty() {
            data
        } else {
            let mut b = std::mem::take(&mut self.dirs[side.index()].buf);
            b.extend_from_slice(data);
            joined = b;
            &joined
        };
        let mut i = 0;
        while i < work.len() {
            if packets.len() >= PACKETS_MAX {
                notes.push(format!("{} more bytes of packets not read", work.len() - i));
                break;
            }
            let first = work[i];
            let (rem, n) = match varint(&work[i + 1..]) {
                Err(()) => {
                    self.dirs[side.index()].buf.clear();
                    return None;
                }
                Ok(None) => {
                    self.dirs[side.index()].buf = work[i..].to_vec();
                    notes.push(format!(
                        "part of {} ({} bytes)",
                        TYPES[usize::from(first >> 4)],
                        work.len() - i
                    ));
                    break;
                }
                Ok(Some(x)) => x,
            };
            let start = i + 1 + n;
            let total = 1 + n + rem as usize;
            let have = work.len() - i;
            if have >= total {
                let p = self.packet(side, first, &work[start..i + total], false)?;
                packets.push(p);
                i += total;
                continue;
            }
            if total > BUF_MAX && have >= HEAD {
                // Too large to keep: read its start, skip the rest as it comes.
                let p = self.packet(side, first, &work[start..], true)?;
                packets.push(p);
                let d = &mut self.dirs[side.index()];
                d.skip = total - have;
                d.skipping = first >> 4;
            } else {
                // Wait for the rest (or, for a large packet, for its first HEAD bytes).
                if first >> 4 == 0 {
                    return None;
                }
                self.dirs[side.index()].buf = work[i..].to_vec();
                notes.push(format!(
                    "part of {} ({have} of {total} bytes)",
                    TYPES[usize::from(first >> 4)]
                ));
            }
            break;
        }
        if packets.is_empty() && notes.is_empty() {
            return None;
        }
        let mut texts: Vec<String> = packets.iter().map(|p| p.text.clone()).collect();
        texts.extend(notes.iter().cloned());
        let heartbeat = !packets.is_empty() && packets.iter().all(|p| p.heartbeat);
        let pairing = packets.iter().find_map(|p| p.pairing.clone());
        let names = packets.iter().find_map(|p| p.names.clone());
        let json = match packets.len() {
            0 => json!({"protocol": "mqtt", "type": "part", "notes": notes}),
            1 => {
                let mut j = packets.pop().map(|p| p.json).unwrap_or_default();
                if !notes.is_empty() {
                    j.insert("notes".into(), notes.into());
                }
                Value::Object(j)
            }
            _ => {
                let ty = packets[0].json.get("type").cloned().unwrap_or_default();
                let list: Vec<Value> = packets.into_iter().map(|p| Value::Object(p.json)).collect();
                json!({"protocol": "mqtt", "type": ty, "packets": list, "notes": notes})
            }
        };
        let mut r = Reading::new(texts.join(" | "), json);
        r.heartbeat = heartbeat;
        r.pairing = pairing;
        r.names_connection = names;
        Some(finish(r))
    }

    fn memory(&self) -> usize {
        self.dirs
            .iter()
            .map(|d| {
                d.buf.capacity()
                    + d.aliases.capacity() * size_of::<(u16, String)>()
                    + d.aliases.iter().map(|(_, s)| s.capacity()).sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(a: &mut Mqtt, side: Side, b: &[u8]) -> Option<Reading> {
        a.read(&AppMessage::binary(side, b))
    }

    fn txt(a: &mut Mqtt, side: Side, b: &[u8]) -> String {
        rd(a, side, b).unwrap_or_else(|| panic!("{b:02x?}")).text
    }

    fn s(x: &str) -> Vec<u8> {
        let mut v = (x.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(x.as_bytes());
        v
    }

    /// A packet: header byte, remaining length, body.
    fn pk(first: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        let mut n = body.len();
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            v.push(b);
            if n == 0 {
                break;
            }
        }
        v.extend_from_slice(body);
        v
    }

    fn connect(level: u8, flags: u8, id: &str, tail: &[u8]) -> Vec<u8> {
        let mut b = s("MQTT");
        b.extend([level, flags, 0, 60]);
        if level == 5 {
            b.push(0);
        }
        b.extend(s(id));
        b.extend_from_slice(tail);
        pk(0x10, &b)
    }

    // Packets as laid out in the MQTT 3.1.1 and 5.0 specifications.
    #[test]
    fn mqtt_311() {
        let mut a = Mqtt::new();
        let mut tail = s("user");
        tail.extend(s("hunter2"));
        let c = rd(&mut a, Side::Client, &connect(4, 0xc2, "mqttjs_1", &tail)).unwrap();
        assert_eq!(
            c.text,
            r#"CONNECT v3.1.1 client "mqttjs_1" keep-alive 60s clean-session user "user" password"#
        );
        assert!(!c.text.contains("hunter2") && !c.json.to_string().contains("hunter2"));
        assert_eq!(c.names_connection.as_deref(), Some("mqttjs_1"));
        assert!(is_connect(&connect(4, 2, "x", &[])));
        assert_eq!(
            txt(&mut a, Side::Server, &[0x20, 2, 0, 0]),
            "CONNACK accepted"
        );
        assert_eq!(
            txt(&mut a, Side::Server, &[0x20, 2, 1, 5]),
            "CONNACK session-present refused: not authorized"
        );
        let mut sub = vec![0, 1];
        sub.extend(s("a/b"));
        sub.push(1);
        sub.extend(s("c/#"));
        sub.push(0);
        let r = rd(&mut a, Side::Client, &pk(0x82, &sub)).unwrap();
        assert_eq!(r.text, "SUBSCRIBE 1 a/b qos1, c/# qos0");
        assert_eq!(r.pairing, Some(("c:1".into(), true)));
        let r = rd(&mut a, Side::Server, &[0x90, 4, 0, 1, 1, 0x80]).unwrap();
        assert_eq!(r.text, "SUBACK 1 qos1, failure");
        assert_eq!(r.pairing, Some(("c:1".into(), false)));
        let mut publ = s("hello/world");
        publ.extend([0, 7]);
        publ.extend(b"hi there");
        let r = rd(&mut a, Side::Client, &pk(0x33, &publ)).unwrap();
        assert_eq!(r.text, r#"PUBLISH hello/world qos1 id 7 retain "hi there""#);
        assert_eq!(r.json["topic"], "hello/world");
        assert_eq!(r.json["payload_len"], 8);
        assert_eq!(r.pairing, Some(("c:7".into(), true)));
        let r = rd(&mut a, Side::Server, &[0x40, 2, 0, 7]).unwrap();
        assert_eq!(
            (r.text.as_str(), r.pairing),
            ("PUBACK 7", Some(("c:7".into(), false)))
        );
        // QoS 2 from the server.
        let mut publ = s("t");
        publ.extend([0, 9, 0xff, 0x00]);
        assert_eq!(
            txt(&mut a, Side::Server, &pk(0x3c, &publ)),
            "PUBLISH t qos2 id 9 dup 0xff00"
        );
        assert_eq!(
            rd(&mut a, Side::Client, &[0x50, 2, 0, 9]).unwrap().pairing,
            Some(("s:9".into(), false))
        );
        assert_eq!(
            rd(&mut a, Side::Server, &[0x62, 2, 0, 9]).unwrap().pairing,
            Some(("s:9:rel".into(), true))
        );
        assert_eq!(
            rd(&mut a, Side::Client, &[0x70, 2, 0, 9]).unwrap().pairing,
            Some(("s:9:rel".into(), false))
        );
        let mut un = vec![0, 2];
        un.extend(s("a/b"));
        assert_eq!(
            txt(&mut a, Side::Client, &pk(0xa2, &un)),
            "UNSUBSCRIBE 2 a/b"
        );
        assert_eq!(txt(&mut a, Side::Server, &[0xb0, 2, 0, 2]), "UNSUBACK 2");
        let p = rd(&mut a, Side::Client, &[0xc0, 0]).unwrap();
        assert!(p.heartbeat && p.text == "PINGREQ" && p.pairing == Some(("ping".into(), true)));
        assert!(rd(&mut a, Side::Server, &[0xd0, 0]).unwrap().heartbeat);
        assert_eq!(txt(&mut a, Side::Client, &[0xe0, 0]), "DISCONNECT");
        // Wrong flags, type 0, trailing bytes: not MQTT.
        for b in [
            &[0x80, 0][..],
            &[0x00, 0],
            &[0xc0, 1, 0],
            &[0x36, 3, 0, 1, b'a'],
            &[0xe0, 1, 0],
        ] {
            assert!(rd(&mut a, Side::Client, b).is_none(), "{b:02x?}");
        }
        // Will, 3.1.
        let mut a = Mqtt::new();
        let mut b = s("MQIsdp");
        b.extend([3, 0x2c, 0, 10]);
        b.extend(s("id"));
        b.extend(s("last/will"));
        b.extend(s("bye"));
        assert_eq!(
            txt(&mut a, Side::Client, &pk(0x10, &b)),
            r#"CONNECT v3.1 client "id" keep-alive 10s will "last/will" qos1 retain"#
        );
    }

    #[test]
    fn mqtt_5() {
        let mut a = Mqtt::new();
        // CONNECT with properties (session expiry, receive maximum) and a user property.
        let mut b = s("MQTT");
        b.extend([5, 0x02, 0, 30]);
        let mut props = vec![0x11, 0, 0, 0, 10, 0x21, 0, 20, 0x26];
        props.extend(s("app"));
        props.extend(s("demo"));
        b.push(props.len() as u8);
        b.extend(props);
        b.extend(s(""));
        let c = rd(&mut a, Side::Client, &pk(0x10, &b)).unwrap();
        assert_eq!(
            c.text,
            r#"CONNECT v5.0 client "" keep-alive 30s clean-start [app=demo]"#
        );
        assert_eq!(c.names_connection, None);
        // CONNACK assigning a client id.
        let mut b = vec![0, 0];
        let mut props = vec![0x12];
        props.extend(s("auto-1234"));
        props.extend([0x22, 0, 10]);
        b.push(props.len() as u8);
        b.extend(props);
        let r = rd(&mut a, Side::Server, &pk(0x20, &b)).unwrap();
        assert_eq!(r.text, r#"CONNACK success assigned client "auto-1234""#);
        assert_eq!(r.names_connection.as_deref(), Some("auto-1234"));
        // PUBLISH setting a topic alias, then one using it.
        let mut b = s("sensors/temp");
        b.extend([5, 0x23, 0, 1, 0x01, 1]);
        b.extend(b"21.5");
        assert_eq!(
            txt(&mut a, Side::Client, &pk(0x30, &b)),
            r#"PUBLISH sensors/temp qos0 "21.5""#
        );
        let mut b = s("");
        b.extend([3, 0x23, 0, 1]);
        b.extend(b"22");
        let r = rd(&mut a, Side::Client, &pk(0x30, &b)).unwrap();
        assert_eq!(r.text, r#"PUBLISH sensors/temp qos0 "22""#);
        assert_eq!(r.json["topic_alias"], 1);
        // PUBACK with a reason code and a reason string.
        let mut b = vec![0, 5, 0x10];
        let mut props = vec![0x1f];
        props.extend(s("nobody listens"));
        b.push(props.len() as u8);
        b.extend(props);
        assert_eq!(
            txt(&mut a, Side::Server, &pk(0x40, &b)),
            r#"PUBACK 5 no matching subscribers reason "nobody listens""#
        );
        assert_eq!(
            txt(&mut a, Side::Server, &[0x40, 3, 0, 6, 0]),
            "PUBACK 6 success"
        );
        assert_eq!(txt(&mut a, Side::Server, &[0x40, 2, 0, 6]), "PUBACK 6");
        let mut sub = vec![0, 1, 2, 0x0b, 7];
        sub.extend(s("a/+"));
        sub.push(0x2e);
        assert_eq!(
            txt(&mut a, Side::Client, &pk(0x82, &sub)),
            "SUBSCRIBE 1 a/+ qos2"
        );
        assert_eq!(
            txt(&mut a, Side::Server, &[0x90, 4, 0, 1, 0, 0x8f]),
            "SUBACK 1 topic filter invalid"
        );
        assert_eq!(
            txt(&mut a, Side::Server, &[0xe0, 2, 0x8b, 0]),
            "DISCONNECT server shutting down"
        );
        assert_eq!(
            txt(&mut a, Side::Client, &[0xf0, 2, 0x18, 0]),
            "AUTH continue authentication"
        );
        // An unknown property: not MQTT 5 as we know it.
        assert!(rd(&mut a, Side::Server, &[0xe0, 3, 0x8b, 1, 0x7f]).is_none());
    }

    #[test]
    fn packets_split_and_packed() {
        let mut a = Mqtt::new();
        let mut publ = s("a");
        publ.extend(b"0123456789");
        let p = pk(0x30, &publ);
        // Two packets and a half in one message; the rest in the next.
        let mut m = vec![0xc0, 0];
        m.extend(&p);
        m.extend(&p[..5]);
        let r = rd(&mut a, Side::Client, &m).unwrap();
        assert_eq!(
            r.text,
            r#"PINGREQ | PUBLISH a qos0 "0123456789" | part of PUBLISH (5 of 15 bytes)"#
        );
        assert!(!r.heartbeat);
        assert_eq!(r.json["packets"].as_array().unwrap().len(), 2);
        assert!(a.memory() >= 5);
        // The other direction is independent.
        assert_eq!(txt(&mut a, Side::Server, &[0xd0, 0]), "PINGRESP");
        let r = rd(&mut a, Side::Client, &p[5..]).unwrap();
        assert_eq!(r.text, r#"PUBLISH a qos0 "0123456789""#);
        // Cut inside the remaining length.
        let big = pk(0x30, &[s("b"), vec![b'x'; 300]].concat());
        assert_eq!(
            txt(&mut a, Side::Client, &big[..2]),
            "part of PUBLISH (2 bytes)"
        );
        assert!(txt(&mut a, Side::Client, &big[2..]).starts_with(r#"PUBLISH b qos0 "xxx"#));
        // A packet larger than the buffer: its start is read, the rest skipped.
        let huge = pk(0x30, &[s("big"), vec![b'y'; 200_000]].concat());
        let r = rd(&mut a, Side::Client, &huge[..1000]).unwrap();
        assert_eq!(r.text, "part of PUBLISH (1000 of 200009 bytes)");
        let r = rd(&mut a, Side::Client, &huge[1000..100_000]).unwrap();
        assert!(r.text.starts_with(r#"PUBLISH big qos0 "yyy"#), "{}", r.text);
        assert!(r.text.ends_with("(first 99991 bytes)"), "{}", r.text);
        assert!(a.memory() < 1024);
        let mut end = huge[100_000..].to_vec();
        end.extend([0xc0, 0]);
        let r = rd(&mut a, Side::Client, &end).unwrap();
        assert_eq!(
            r.text,
            "PINGREQ | PUBLISH continues (100009 bytes, its end)"
        );
        assert!(a.memory() < 1024);
    }

    #[test]
    fn hostile_packets() {
        let mut a = Mqtt::new();
        // A varint that never ends.
        assert!(rd(&mut a, Side::Client, &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).is_none());
        // An absurd remaining length (268 MB) with little data: read, then skipped.
        let r = rd(
            &mut a,
            Side::Client,
            &[0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, b'x'],
        );
        assert!(r.is_some());
        assert!(a.memory() < 1024);
        let mut a = Mqtt::new();
        // Strings longer than their packet.
        assert!(rd(&mut a, Side::Client, &[0x10, 4, 0, 200, b'M', b'Q']).is_none());
        assert!(rd(&mut a, Side::Client, &[0x30, 3, 0xff, 0xff, 0]).is_none());
        // Property lengths past the end.
        a.level = Some(5);
        assert!(rd(&mut a, Side::Server, &[0xe0, 3, 0, 0xff, 0xff]).is_none());
        assert!(rd(&mut a, Side::Server, &[0x20, 3, 0, 0, 0x7f]).is_none());
        // Many packets in one message.
        let many = [0xc0u8, 0].repeat(10_000);
        let r = rd(&mut a, Side::Client, &many).unwrap();
        assert!(r.text.len() < 2100 && r.text.contains("more bytes of packets not read"));
        // Random bytes never panic.
        let mut x: u32 = 1;
        for n in 0..3000 {
            let b: Vec<u8> = (0..(n % 40))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = rd(
                &mut a,
                if n % 2 == 0 {
                    Side::Client
                } else {
                    Side::Server
                },
                &b,
            );
        }
        assert!(a.memory() <= 2 * BUF_MAX + 64 * 1024);
    }
}
