//! The operating-system user, as libpq finds it for its default `user`.

#![allow(unsafe_code)]

/// The name of the effective user (`getpwuid_r(geteuid())`), or `None` when the user has no
/// password-database entry or the name is not UTF-8.
#[cfg(unix)]
pub(crate) fn os_user_name() -> Option<String> {
    use std::ffi::CStr;

    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut len = 1024usize;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; len];
        // SAFETY: `passwd` is a plain C struct of integers and pointers; all-zero (null
        // pointers) is a valid value, and getpwuid_r overwrites it before we read it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `pwd` and `result` are live locals,
        // and `buf` is writable for `buf.len()` bytes; getpwuid_r is thread-safe.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && len < (1 << 20) {
            len *= 2;
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`, which
        // is alive and unchanged until the end of this scope.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return name
            .to_str()
            .ok()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
}

/// Not available off Unix.
#[cfg(not(unix))]
pub(crate) fn os_user_name() -> Option<String> {
    None
}
