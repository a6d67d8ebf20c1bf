//! Memory accounting balances: after every sample (complete, cut mid-stream, lossy, hostile
//! regression captures) has been decoded to the end, nothing is still charged to the shared
//! budgets. A leak here would slowly shrink the memory left for later connections.

use std::path::Path;
use wsdump::analyzer::{Analyzer, Config};
use wsdump::capture::file::{CaptureFile, Flow};
use wsdump::event::VecSink;

#[test]
fn budgets_return_to_zero_after_every_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        for ports in [vec![], vec![7272, 9001, 9002, 9004]] {
            let mut cap = CaptureFile::open(std::fs::File::open(&path).unwrap()).unwrap();
            let mut an = Analyzer::new(Config {
                ports,
                ..Config::default()
            });
            let mut sink = VecSink::default();
            let mut last = Default::default();
            let _ = cap.for_each_packet(|p| {
                last = p.ts;
                an.packet(p, &mut sink).unwrap();
                Flow::Continue
            });
            an.finish(last, &mut sink).unwrap();
            assert_eq!(
                an.held(),
                0,
                "{name}: message/hunt/HTTP bytes still charged"
            );
            assert_eq!(an.buffered(), 0, "{name}: out-of-order bytes still charged");
            assert_eq!(an.tracked(), 0, "{name}: connections left");
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} captures");
}
