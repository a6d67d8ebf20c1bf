//! `-r FILE -w OUT.pcapng`: the packets written back out with the TLS secrets that decrypt
//! them, in Decryption Secrets Blocks, so Wireshark and tshark open the copy decrypted
//! without the key log. (A minimal writer for files, until the exports' `-w` sink takes the
//! same call: [`PcapngWriter::write_new_keys`] before each packet.)
//!
//! Each packet is written after it was decoded: a connection's secrets are known once its
//! ClientHello was read (or the key log gained them), and their block goes in front of the
//! packet that follows — before the ServerHello and the records they open.

use std::fs::File;
use std::io::{self, BufWriter};
use std::ops::ControlFlow;
use wsdump::capture::RawPacket;
use wsdump::capture::pcapng_writer::PcapngWriter;
use wsdump::engine::PacketSource;
use wsdump::tls::KeyStore;

/// A source whose packets are also written, decrypting secrets first.
pub(crate) struct WithSecrets<S> {
    pub(crate) inner: S,
    pub(crate) out: PcapngWriter<BufWriter<File>>,
    pub(crate) keys: KeyStore,
    /// The first write error: reported after the run.
    pub(crate) failed: Option<io::Error>,
}

impl<S: PacketSource> WithSecrets<S> {
    pub(crate) fn create(inner: S, path: &str, keys: KeyStore) -> io::Result<Self> {
        let f = BufWriter::new(File::create(path)?);
        Ok(WithSecrets {
            inner,
            out: PcapngWriter::new(f, 0)?,
            keys,
            failed: None,
        })
    }

    /// Flushes what is written; the first error of the run if there was one.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

impl<S: PacketSource> PacketSource for WithSecrets<S> {
    type Error = S::Error;
    fn for_each(
        &mut self,
        f: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), S::Error> {
        let WithSecrets {
            inner,
            out,
            keys,
            failed,
        } = self;
        inner.for_each(&mut |p| {
            let flow = f(p);
            if failed.is_none() {
                let r = out.write_new_keys(keys).and_then(|_| out.write(p));
                if let Err(e) = r {
                    *failed = Some(e);
                }
            }
            flow
        })
    }

    fn keys(&self) -> Option<KeyStore> {
        self.inner.keys()
    }
}
