//! TLS decryption with an NSS key log (SSLKEYLOGFILE).

pub mod keylog;
pub mod record;
pub mod schedule;
pub mod suite;
