//! wsdump: a websocket-aware protocol analyzer.
//!
//! The pipeline, one module per layer: [`capture`] (files, live) → [`packet`] (link, IP,
//! TCP) → [`reassembly`] (per-direction byte streams) → [`conversation`] with [`http`]
//! (the upgrade) and [`ws`] (frames, messages, permessage-deflate) → [`event`]s →
//! [`output`] printers. [`analyzer`] drives the layers.

pub mod analyzer;
pub mod app;
pub mod capture;
pub mod conversation;
pub mod event;
pub mod http;
pub mod output;
pub mod packet;
pub mod reassembly;
pub mod shard;
pub mod ws;
