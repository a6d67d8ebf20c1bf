//! TLS decryption with an NSS key log (SSLKEYLOGFILE).

pub mod keylog;
pub mod schedule;
pub mod suite;
