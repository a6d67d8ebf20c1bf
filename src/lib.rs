//! wsdump: a websocket-aware protocol analyzer.
//!
//! The pipeline, one module per layer: [`capture`] (files, live) → [`packet`] (link, IP,
//! TCP) → [`reassembly`] (per-direction byte streams) → [`conversation`] with [`http`]
//! (the upgrade) and [`ws`] (frames, messages, permessage-deflate) → [`event`]s →
//! [`output`] printers. [`analyzer`] drives the layers.

pub mod analyzer;
pub mod annotate;
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
