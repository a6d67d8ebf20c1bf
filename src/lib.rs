//! wsdump: a websocket-aware protocol analyzer.
//!
//! The library's API is the pipeline: [`engine::Pipeline`] takes packets from an
//! [`engine::PacketSource`] (a capture file, a live capture) and hands [`event::Event`]s to an
//! [`event::Sink`] (a printer, an export, your code). One module per layer: [`capture`]
//! (files, live) → [`packet`] (link, IP, TCP) → [`analyzer`] (the connection table) →
//! [`reassembly`] (per-direction byte streams) → [`conversation`] with [`http`] (the upgrade)
//! and [`ws`] (frames, messages, permessage-deflate) → [`event`]s, read by [`annotate`] →
//! [`output`] printers. Everything that grows with the input is charged to one
//! [`memory::Memory`] ledger. docs/architecture.md is the map.
//!
//! ```no_run
//! use wsdump::{analyzer::Config, capture::file::CaptureFile, engine::Pipeline};
//! use wsdump::output::json::{JsonOptions, JsonPrinter};
//!
//! let mut file = CaptureFile::open(std::fs::File::open("chat.pcap")?)?;
//! let mut printer = JsonPrinter::new(std::io::stdout(), JsonOptions::default());
//! let run = Pipeline::run(&mut file, Config::default(), &mut printer)?;
//! eprintln!("{} messages", run.stats.messages);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Every public item is documented: the library is the pipeline's API.
#![warn(missing_docs)]

pub mod analyzer;
pub mod annotate;
pub mod app;
pub mod capfilter;
pub mod capture;
pub mod conversation;
pub mod engine;
pub mod event;
pub mod http;
pub mod memory;
pub mod output;
pub mod packet;
pub mod reassembly;
pub mod shard;
pub mod tls;
pub mod ws;
