//! Socket calls the client needs beyond `std`: a zero-timeout `poll` for the liveness probe
//! and reading TCP bounds back from the kernel. Memory-safe for any descriptor value: a stale
//! or foreign descriptor yields a wrong answer (or `None`), never undefined behaviour.

#![allow(unsafe_code)]

use std::os::unix::io::RawFd;

/// True when `fd` has something to read, hung up, or errored: on an idle PostgreSQL
/// connection any of those means the session is suspect (a terminated backend leaves a FATAL
/// message and EOF). Costs one non-blocking `poll(2)`.
pub(crate) fn readable_or_hung_up(fd: RawFd) -> bool {
    // -1 (an error) counts as suspect too: the caller validates with a round trip.
    wait_readable(fd, 0)
}

/// Waits up to `timeout_ms` (negative: forever) for `fd` to become readable (or hung up).
/// Returns false on timeout. An interrupted wait counts as readable: the caller reads and
/// sees what is there.
pub(crate) fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: as in `readable_or_hung_up`; the call blocks at most `timeout_ms`.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n != 0
}

fn sockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid, writable and live across the call; the kernel
    // writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut value as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// `(SO_KEEPALIVE, keepalive idle seconds, TCP_USER_TIMEOUT ms)` of a TCP socket; the user
/// timeout reads as 0 where the platform has none.
pub(crate) fn tcp_bounds(fd: RawFd) -> Option<(bool, u32, u32)> {
    let keepalive = sockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let (idle, user_timeout) = (
        sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?,
        sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)?,
    );
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let (idle, user_timeout) = (sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPALIVE)?, 0);
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    )))]
    let (idle, user_timeout) = (sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?, 0);
    Some((keepalive, idle.max(0) as u32, user_timeout.max(0) as u32))
}
