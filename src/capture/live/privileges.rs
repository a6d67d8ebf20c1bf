//! Giving up capture rights once the sockets are open.

/// After the sockets (and any output file) are open wsdump needs no privilege: sets
/// `PR_SET_NO_NEW_PRIVS` and empties the effective, permitted and inheritable capability
/// sets. What remains is the user id itself (root stays uid 0, with no capabilities) and the
/// open packet sockets. Failures are ignored: this only narrows what a bug could do.
pub fn drop_privileges() {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: prctl with integer arguments; capset with a v3 header and two data structs.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr());
    }
}
