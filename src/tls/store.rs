//! The key log one run decrypts with, shared by every connection (and every worker thread):
//! the lines of `--keylog` files, re-read as they grow, and the pcapng Decryption Secrets
//! Blocks of the capture. It also remembers which client randoms it gave keys for, so a
//! pcapng copy (`-w`) can carry exactly those secrets.

use super::keylog::{self, ClientRandom, KeyLog, KeyLogError, KeyLogReader, Secrets};
use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// A shared key log. Cloning shares it.
///
/// Two locks: the key log's (read while connections decrypt, written when secrets are added)
/// and the side's (sources, followed files, what was used). The side's is never held while
/// waiting for the key log's, and the key log's read lock is never taken twice by one thread.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    // One pointer: every connection holds a clone.
    inner: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    log: RwLock<KeyLog>,
    side: Mutex<Side>,
}

#[derive(Debug, Default)]
struct Side {
    /// Key log files followed as they grow.
    follow: Vec<KeyLogReader>,
    /// Client randoms whose secrets decrypted something, in the order they were first used.
    used: Vec<ClientRandom>,
    used_set: HashSet<ClientRandom>,
    /// How many of `used` were handed out by [`KeyStore::take_new_used`].
    taken: usize,
    /// Where the secrets came from, for reports ("key log /tmp/keys", "the capture's DSB").
    sources: Vec<String>,
}

impl KeyStore {
    /// An empty store (keys from the capture's Decryption Secrets Blocks may still come).
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// A store holding `log` (its source, in reports: "the key log given").
    pub fn from_log(log: KeyLog) -> KeyStore {
        let s = KeyStore::new();
        *s.inner.log.write().unwrap_or_else(PoisonError::into_inner) = log;
        s.lock_side().sources.push("the key log given".into());
        s
    }

    /// Follows a key log file: reads what it holds now, and more on each
    /// [`refresh`](Self::refresh). A file that does not exist yet is not an error (the
    /// browser creates it at its first connection); one that cannot be read is.
    pub fn follow(&self, path: impl Into<PathBuf>) -> io::Result<()> {
        let path = path.into();
        let mut reader = KeyLogReader::new(&path);
        {
            let mut log = self
                .inner
                .log
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            reader.poll(&mut log)?;
        }
        let mut side = self.lock_side();
        side.sources.push(format!("key log {}", path.display()));
        side.follow.push(reader);
        Ok(())
    }

    /// Reads a whole key log file now, once (a capture file's key log, which is complete).
    pub fn add_file(&self, path: impl Into<PathBuf>) -> io::Result<()> {
        let path = path.into();
        let text = std::fs::read(&path)?;
        self.inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add_text(&text);
        self.lock_side()
            .sources
            .push(format!("key log {}", path.display()));
        Ok(())
    }

    /// Reads what the followed files gained since the last call; returns the new lines.
    /// Errors (a file that became unreadable) are not fatal: the secrets read stay.
    pub fn refresh(&self) -> usize {
        // Never the side lock while waiting for the key log's: connections read the key log
        // and then take the side lock (to mark what they used).
        let mut follow = std::mem::take(&mut self.lock_side().follow);
        if follow.is_empty() {
            return 0;
        }
        let n = {
            let mut log = self
                .inner
                .log
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            follow
                .iter_mut()
                .map(|r| r.poll(&mut log).unwrap_or(0))
                .sum()
        };
        self.lock_side().follow = follow;
        n
    }

    /// Whether [`refresh`](Self::refresh) can find anything new (a file is followed).
    pub fn follows(&self) -> bool {
        !self.lock_side().follow.is_empty()
    }

    /// Adds a pcapng Decryption Secrets Block (only type TLSK is a key log).
    pub fn add_dsb(&self, secret_type: u32, data: &[u8]) -> Result<(), KeyLogError> {
        self.inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .add_dsb(secret_type, data)?;
        let mut side = self.lock_side();
        if !side.sources.iter().any(|s| s == DSB_SOURCE) {
            side.sources.push(DSB_SOURCE.into());
        }
        Ok(())
    }

    /// Calls `f` with the key log as it is now.
    pub fn with<R>(&self, f: impl FnOnce(&KeyLog) -> R) -> R {
        f(&self
            .inner
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// Connections (client randoms) with at least one secret.
    pub fn len(&self) -> usize {
        self.with(KeyLog::len)
    }

    /// No connection has a secret yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the secrets came from, in words ("key log keys.txt, the capture's
    /// Decryption Secrets Block"); empty if none was given.
    pub fn sources(&self) -> String {
        self.lock_side().sources.join(", ")
    }

    /// Records that the secrets of `client_random` decrypted a connection.
    pub fn mark_used(&self, client_random: &ClientRandom) {
        let mut side = self.lock_side();
        if side.used_set.insert(*client_random) {
            side.used.push(*client_random);
        }
    }

    /// Key log lines (NSS format) of the client randoms marked used since the last call:
    /// what a Decryption Secrets Block written now must add. Empty when nothing is new.
    pub fn take_new_used(&self) -> Vec<u8> {
        let mut side = self.lock_side();
        let new: Vec<ClientRandom> = side.used[side.taken..].to_vec();
        side.taken = side.used.len();
        drop(side);
        self.lines_for(&new)
    }

    /// Key log lines of every client random marked used.
    pub fn used_lines(&self) -> Vec<u8> {
        let used = self.lock_side().used.clone();
        self.lines_for(&used)
    }

    fn lines_for(&self, randoms: &[ClientRandom]) -> Vec<u8> {
        let mut out = String::new();
        self.with(|log| {
            for cr in randoms {
                if let Some(s) = log.get(cr) {
                    write_lines(&mut out, cr, s);
                }
            }
        });
        out.into_bytes()
    }

    fn lock_side(&self) -> std::sync::MutexGuard<'_, Side> {
        self.inner
            .side
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

const DSB_SOURCE: &str = "the capture's Decryption Secrets Block";

/// The NSS key log lines that say what `s` holds. `*_TRAFFIC_SECRET_N` for N > 0 (OpenSSL's
/// after a KeyUpdate) are left out: readers derive them, and Wireshark does not know the label.
fn write_lines(out: &mut String, cr: &ClientRandom, s: &Secrets) {
    let random = keylog::hex(cr);
    let mut line = |label: &str, secret: Option<&[u8]>| {
        if let Some(secret) = secret {
            out.push_str(label);
            out.push(' ');
            out.push_str(&random);
            out.push(' ');
            out.push_str(&keylog::hex(secret));
            out.push('\n');
        }
    };
    line("CLIENT_RANDOM", s.master_secret.as_deref());
    line(
        "CLIENT_EARLY_TRAFFIC_SECRET",
        s.client_early_traffic.as_deref(),
    );
    line(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        s.client_handshake_traffic.as_deref(),
    );
    line(
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        s.server_handshake_traffic.as_deref(),
    );
    line("CLIENT_TRAFFIC_SECRET_0", s.client_traffic(0));
    line("SERVER_TRAFFIC_SECRET_0", s.server_traffic(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "404044b6a7149bdbab454496bfaa712092715f38297dc6fb21ef7ae4d7cb8ae5";

    fn random(h: &str) -> ClientRandom {
        keylog::unhex(h.as_bytes()).unwrap().try_into().unwrap()
    }

    #[test]
    fn a_followed_file_is_read_again_when_it_grows() {
        let dir = std::env::temp_dir().join(format!("wsdump-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let _ = std::fs::remove_file(&path);
        let store = KeyStore::new();
        store.follow(&path).unwrap();
        assert!(store.is_empty(), "a key log not yet written holds nothing");
        let ms = "ab".repeat(48);
        std::fs::write(&path, format!("# comment\nCLIENT_RANDOM {R1} {ms}\n")).unwrap();
        assert_eq!(store.refresh(), 2);
        assert!(store.with(|l| l.get(&random(R1)).is_some()));
        assert_eq!(store.refresh(), 0, "nothing new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn used_secrets_come_back_as_key_log_lines_once() {
        let mut log = KeyLog::new();
        let ms = "cd".repeat(48);
        let t = "01".repeat(32);
        log.add_text(
            format!(
                "CLIENT_RANDOM {R1} {ms}\nCLIENT_TRAFFIC_SECRET_0 {R1} {t}\n\
                 CLIENT_TRAFFIC_SECRET_1 {R1} {t}\nCLIENT_RANDOM {} {ms}\n",
                "00".repeat(32)
            )
            .as_bytes(),
        );
        let store = KeyStore::from_log(log);
        assert!(store.take_new_used().is_empty());
        store.mark_used(&random(R1));
        store.mark_used(&random(R1));
        let lines = String::from_utf8(store.take_new_used()).unwrap();
        assert_eq!(
            lines,
            format!("CLIENT_RANDOM {R1} {ms}\nCLIENT_TRAFFIC_SECRET_0 {R1} {t}\n")
        );
        assert!(store.take_new_used().is_empty(), "handed out once");
        assert_eq!(store.used_lines(), lines.as_bytes());
        // What is written reads back as the same secrets.
        let mut again = KeyLog::new();
        again.add_text(lines.as_bytes());
        assert_eq!(
            again.get(&random(R1)).unwrap().master_secret,
            store.with(|l| l.get(&random(R1)).unwrap().master_secret.clone())
        );
    }
}
