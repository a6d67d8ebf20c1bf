//! Live capture decoded on several threads: a dispatcher hands every chunk of the queue to
//! every decoding thread, each of which decodes its share of the connections
//! ([`crate::shard`]); a chunk goes back to the readers when the last thread is done with
//! it, so the queue's bound holds whatever the number of threads.
//!
//! Every thread sees every packet (each follows every connection's TCP lifecycle so that
//! they number connections alike, as with files): what several threads gain is the
//! decoding, inflating and printing of the connections, split among them.

use super::queue::{Buffers, Chunk, Item};
use super::{Capture, Interface};
use crate::capture::file::CaptureError;
use crate::engine::{Input, PacketSource};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often an idle decoding thread looks up (to notice that the run is over).
const IDLE: Duration = Duration::from_millis(100);

/// A chunk handed to several threads; back to the readers when the last one drops it.
pub struct Shared {
    chunk: Option<Chunk>,
    buffers: Arc<Buffers>,
}

impl Shared {
    /// The chunk's records.
    pub fn chunk(&self) -> &Chunk {
        self.chunk.as_ref().expect("until dropped")
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(c) = self.chunk.take() {
            // Only now is the chunk taken in the queue's sense: readers send chunks that are
            // not full only to decoders that have nothing else waiting.
            self.buffers.taken();
            self.buffers.give_back(c);
        }
    }
}

impl Capture {
    /// Makes a chunk [`Capture::next_event`] returned shareable among decoding threads.
    /// Once a chunk has been shared, chunks count as taken only when every thread is done
    /// with them.
    pub fn share(&mut self, chunk: Chunk) -> Arc<Shared> {
        if !self.dispatching {
            self.dispatching = true;
            // This chunk was counted taken when it was received; it will be again.
            self.buffers.untaken();
        }
        Arc::new(Shared {
            chunk: Some(chunk),
            buffers: self.buffers.clone(),
        })
    }
}

/// One decoding thread's packets: the chunks the dispatcher sends it, until it stops.
pub struct ChunkSource {
    rx: Receiver<Arc<Shared>>,
    ifaces: Arc<[Interface]>,
}

impl ChunkSource {
    /// Reads the chunks sent on `rx`, of packets of `ifaces`.
    pub fn new(rx: Receiver<Arc<Shared>>, ifaces: Arc<[Interface]>) -> Self {
        ChunkSource { rx, ifaces }
    }
}

impl PacketSource for ChunkSource {
    type Error = CaptureError;

    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&crate::capture::RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        self.for_each_input(&mut |i| match i {
            Input::Packet(p) => f(p),
            _ => ControlFlow::Continue(()),
        })
    }

    fn for_each_input(
        &mut self,
        f: &mut dyn FnMut(Input<'_>) -> ControlFlow<()>,
    ) -> Result<(), CaptureError> {
        loop {
            let shared = match self.rx.try_recv() {
                Ok(c) => c,
                Err(_) => {
                    // Caught up: what is printed can go out now (and again every IDLE, so
                    // that a thread whose run is over notices).
                    if f(Input::Idle).is_break() {
                        return Ok(());
                    }
                    match self.rx.recv_timeout(IDLE) {
                        Ok(c) => c,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
            };
            for item in shared.chunk().items() {
                let flow = match item {
                    Item::Packet {
                        iface,
                        ts,
                        orig_len,
                        data,
                    } => f(Input::Packet(&self.ifaces[iface].raw(ts, orig_len, data))),
                    Item::Dropped { ts, dropped, .. } => f(Input::Dropped { ts, what: dropped }),
                };
                if flow.is_break() {
                    return Ok(());
                }
            }
        }
    }
}
