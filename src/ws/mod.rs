//! RFC 6455 websocket: frame headers and masking (`frame`), permessage-deflate (`deflate`),
//! and the per-direction decoder that turns a byte stream into frames and messages
//! (`decoder`), including resynchronisation after loss.

pub mod decoder;
pub mod deflate;
pub mod frame;

pub use decoder::{Limits, WsDecoder};
