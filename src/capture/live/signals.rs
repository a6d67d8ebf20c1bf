//! SIGINT and SIGTERM as a clean stop: blocked in every thread but one, which waits for them
//! and tells the decoding thread, so a signal never interrupts a read or a write half-way.

use super::Event;
use std::mem;
use std::sync::mpsc::Sender;

fn stop_sigset() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it creates
/// afterwards): they are then received only by the signal thread [`super::Capture::start`]
/// runs, which turns them into a clean stop. Call before creating any thread.
pub fn block_stop_signals() {
    let set = stop_sigset();
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for the stop signals, forever, and forwards each as [`Event::Signal`].
pub(super) fn waiter(tx: Sender<Event>) {
    let set = stop_sigset();
    loop {
        let mut sig = 0;
        // SAFETY: set is a valid sigset_t, sig a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        if tx.send(Event::Signal(sig)).is_err() {
            return;
        }
    }
}
