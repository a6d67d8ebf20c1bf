//! The teaching views: the walkthroughs in docs/ are the binary's real output (regenerate with
//! `WSDUMP_BLESS=1 cargo test --test teaching`), and every number the annotations state is the
//! number on the wire.

use sha1::{Digest, Sha1};
use std::path::Path;
use std::process::Command;

fn explain(capture: &str, lang: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_wsdump"))
        .current_dir(root)
        .args([
            "-r",
            capture,
            "--explain",
            "--lang",
            lang,
            "--color",
            "never",
        ])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

const FENCE_START: &str = "<!-- output: wsdump -r samples/workerman-chat.pcap --explain";
const FENCE_END: &str = "<!-- end of output -->";

/// The part of a walkthrough document between the markers, without the code fence lines.
fn embedded(doc: &str) -> (usize, usize) {
    let s = doc.find(FENCE_START).expect("start marker");
    let body = s + doc[s..].find("```text\n").expect("fence") + "```text\n".len();
    let e = doc.find(FENCE_END).expect("end marker");
    let close = doc[..e].rfind("```").expect("closing fence");
    (body, close)
}

#[test]
fn walkthrough_documents_match_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, lang) in [
        ("docs/walkthrough.md", "en"),
        ("docs/walkthrough.ru.md", "ru"),
    ] {
        let path = root.join(file);
        let doc = std::fs::read_to_string(&path).unwrap();
        let (a, b) = embedded(&doc);
        let now = explain("samples/workerman-chat.pcap", lang);
        if std::env::var_os("WSDUMP_BLESS").is_some() {
            let new = format!("{}{}{}", &doc[..a], now, &doc[b..]);
            std::fs::write(&path, new).unwrap();
            continue;
        }
        assert_eq!(
            &doc[a..b],
            now,
            "{file} is stale: WSDUMP_BLESS=1 cargo test --test teaching"
        );
    }
}

fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in output"));
    &text[i + marker.len()..]
}

fn number(s: &str) -> u64 {
    s.trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn handshake_arithmetic_is_the_wire_arithmetic() {
    let text = explain("samples/workerman-chat.pcap", "en").replace("\n#   ", " ");
    // Step 2/3 says ack = client ISN + 1; check against the tcpdump lines printed under it.
    let isn = number(after(
        text.as_str(),
        "Its initial sequence number (ISN) is ",
    ));
    let syn_line = text.lines().find(|l| l.contains("Flags [S],")).unwrap();
    assert_eq!(number(after(syn_line, "seq ")), isn);
    let synack_line = text.lines().find(|l| l.contains("Flags [S.],")).unwrap();
    let ack = number(after(synack_line, "ack "));
    assert_eq!(ack, isn + 1);
    let stated = after(text.as_str(), "Step 2/3");
    assert_eq!(number(after(stated, "ack ")), ack);
    assert_eq!(number(after(stated, "the client's ISN ")), isn);
    let sisn = number(after(synack_line, "seq "));
    let step3 = after(text.as_str(), "Step 3/3");
    assert_eq!(number(after(step3, "ack ")), sisn + 1);
    assert_eq!(number(after(step3, "the server's ISN ")), sisn);
}

#[test]
fn accept_derivation_is_checked_step_by_step() {
    let text = explain("samples/workerman-chat.pcap", "en");
    let key = after(text.as_str(), "Sec-WebSocket-Key: ")
        .split(':')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let flat = text.replace("\n#   ", " ");
    assert!(
        flat.contains(&format!("hashed with SHA-1 = {hex}")),
        "{hex}"
    );
    let b64 = tungstenite::handshake::derive_accept_key(key.as_bytes());
    assert!(flat.contains(&format!("in base64 = {b64}.")));
    assert!(flat.contains(&format!("The server sent {b64}: it matches.")));
}

#[test]
fn unmasking_shown_is_the_unmasking() {
    let text = explain("samples/workerman-chat.pcap", "en");
    let flat = text.replace("\n#   ", " ");
    let mut checked = 0;
    for part in flat.split("Masking key ").skip(1) {
        let key: Vec<u8> = (0..4)
            .map(|i| u8::from_str_radix(&part[i * 2..i * 2 + 2], 16).unwrap())
            .collect();
        let wire = after(part, "First bytes on the wire: ")
            .split(';')
            .next()
            .unwrap();
        let plain = after(part, "unmasked: ").split(" \"").next().unwrap();
        let w: Vec<u8> = wire
            .split(' ')
            .map(|x| u8::from_str_radix(x, 16).unwrap())
            .collect();
        let p: Vec<u8> = plain
            .split(' ')
            .map(|x| u8::from_str_radix(x, 16).unwrap())
            .collect();
        assert_eq!(w.len(), p.len());
        for (i, (a, b)) in w.iter().zip(&p).enumerate() {
            assert_eq!(a ^ key[i % 4], *b);
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} masked frames explained");
    // The login frame unmasks to the text the browser sent.
    assert!(flat.contains("\"{\"type\":\"login\",\""));
}

#[test]
fn russian_walkthrough_has_the_same_numbers() {
    let en = explain("samples/workerman-chat.pcap", "en");
    let ru = explain("samples/workerman-chat.pcap", "ru");
    let tcp = |t: &str| {
        t.lines()
            .filter(|l| l.contains(" IP "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(tcp(&en), tcp(&ru));
    assert!(ru.contains("шаг 1/3"));
    assert!(ru.contains("ISN клиента"));
}

/// The upgrade request's size in the walkthrough is the size of the head on the wire: for
/// these captures the client sent the head alone in one segment, so it is that segment's
/// length as the tcpdump line under it states (once computed from the header fields and one
/// byte short on every sample).
#[test]
fn upgrade_request_size_is_the_size_on_the_wire() {
    for cap in [
        "samples/workerman-chat.pcap",
        "samples/python-deflate.pcap",
        "samples/node-fragmented.pcap",
    ] {
        let out = explain(cap, "en");
        let mut checked = 0;
        let lines: Vec<&str> = out.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(at) = l.find("HTTP/1.1 request") else {
                continue;
            };
            // "(496 bytes):" on this line or the next.
            let text = format!("{}{}", &l[at..], lines.get(i + 1).unwrap_or(&""));
            let n: u64 = text
                .split('(')
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{cap}: no size in {text:?}"));
            let seg = lines[i..]
                .iter()
                .find(|l| l.contains("Flags [P.]"))
                .expect("the request's segment");
            let len: u64 = seg.rsplit("length ").next().unwrap().parse().unwrap();
            assert_eq!(n, len, "{cap}: {text}");
            checked += 1;
        }
        assert!(checked >= 1, "{cap}: no upgrade request explained");
    }
}
