//! Memory accounting balances: after every sample (complete, cut mid-stream, lossy, hostile
//! regression captures) has been decoded to the end, nothing is still charged to the memory
//! ledger, in any pool. A leak here would slowly shrink the memory left for later connections.

use std::path::Path;
use wsdump::analyzer::Config;
use wsdump::capture::file::CaptureFile;
use wsdump::engine::{PacketSource, Pipeline};
use wsdump::event::VecSink;
use wsdump::memory::Pool;
use wsdump::tls::{KeyLog, KeyStore};

#[test]
fn the_ledger_returns_to_zero_after_every_sample() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        for ports in [vec![], vec![7272, 9001, 9002, 9004]] {
            let mut file = CaptureFile::open(std::fs::File::open(&path).unwrap()).unwrap();
            // wss samples are decrypted (their key log, or the pcapng's own secrets), so the
            // TLS state and the conversation inside it are counted too.
            let stem = name.rsplit_once('.').unwrap().0;
            let keylog = root.join(format!("{stem}.keylog"));
            let keys = if keylog.exists() {
                Some(KeyStore::from_log(KeyLog::from_file(&keylog).unwrap()))
            } else {
                file.keys()
            };
            let mut pipeline = Pipeline::new(Config {
                ports,
                keys,
                ..Config::default()
            });
            let run = pipeline.drive(&mut file, &mut VecSink::default()).unwrap();
            if run.stats.connections > 0 {
                assert!(
                    run.stats.peak_memory > 0,
                    "{name}: nothing was ever charged"
                );
            }
            let mem = pipeline.memory();
            for pool in Pool::ALL {
                assert_eq!(mem.used_by(pool), 0, "{name}: {pool} still charged");
            }
            assert_eq!(pipeline.tracked(), 0, "{name}: connections left");
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} captures");
}

/// The application protocol readings (`views`) on the app samples, with the default budget
/// and with budgets too small for them: whatever was given up, nothing stays charged, and
/// some reading the budget could not hold was given up with a notice.
#[test]
fn app_readings_are_charged_and_refunded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/app");
    let mut checked = 0;
    let mut dropped = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".pcap") {
            continue;
        }
        for max_memory in [Config::default().max_memory, 200_000, 20_000, 5_000, 2_000] {
            let mut file = CaptureFile::open(std::fs::File::open(&path).unwrap()).unwrap();
            let mut pipeline = Pipeline::new(Config {
                max_memory,
                ..Config::default()
            });
            let mut sink = VecSink::default();
            pipeline.drive(&mut file, &mut sink).unwrap();
            dropped += sink.0.iter().filter(|e| e.contains("AppDropped")).count();
            let mem = pipeline.memory();
            for pool in Pool::ALL {
                assert_eq!(
                    mem.used_by(pool),
                    0,
                    "{name} {max_memory}: {pool} still charged"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} captures");
    assert!(
        dropped > 0,
        "no budget was small enough to give a reading up"
    );
}
