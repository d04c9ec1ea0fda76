//! A bound on single allocations while untrusted code runs on a thread: a chat template (Jinja
//! from a checkpoint) can build strings without limit — `{% set s = s + s %}` in a loop asks
//! for 2^k bytes — and minijinja's fuel counts instructions, not bytes. An allocation failure
//! aborts a Rust process; instead, while a [`Bound`] is held on a thread, an allocation larger
//! than its limit ends the process with exit status 1 and an `error:` line naming what was
//! running (the template's file), written without allocating. Nothing is half-written: files
//! are published by rename, and what was not renamed is removed by the next writer.
//!
//! The binary installs [`BoundedAlloc`] as its global allocator (`main.rs`); without it (the
//! library used from other programs, its unit tests) a [`Bound`] does nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// The limit in bytes (0: none) and what is running, as a pointer to its UTF-8 bytes and
    /// their length, valid while the [`Bound`] that set them lives. Const-initialised, so
    /// reading them never allocates.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    static WHAT: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// The system allocator with the per-thread bound of [`Bound`].
pub struct BoundedAlloc;

/// Write `bytes` to stderr without allocating.
fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writing a valid buffer to fd 2
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// `n` in decimal, without allocating.
fn write_number(n: usize) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    write_stderr(&buf[i..]);
}

#[cold]
fn refuse(size: usize, limit: usize) -> ! {
    let (ptr, len) = WHAT.with(Cell::get);
    write_stderr(b"error: ");
    if !ptr.is_null() {
        // SAFETY: set by a live `Bound` from a `&str` it keeps alive
        write_stderr(unsafe { std::slice::from_raw_parts(ptr, len) });
        write_stderr(b": ");
    }
    write_stderr(b"asked for ");
    write_number(size);
    write_stderr(b" bytes in one allocation, above the limit of ");
    write_number(limit);
    write_stderr(b" (a chat template that builds strings without bound?); stopped\n");
    // SAFETY: ending the process; nothing of Rust's state is used after
    unsafe { libc::_exit(1) }
}

unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[inline]
fn check(size: usize) {
    // `try_with`: during a thread's teardown the slot may be gone; no bound then
    if let Ok(limit) = LIMIT.try_with(Cell::get) {
        if limit != 0 && size > limit {
            refuse(size, limit);
        }
    }
}

/// While this lives, an allocation above `limit` bytes on this thread ends the process with
/// an error naming `what`.
pub struct Bound<'a> {
    previous: (usize, (*const u8, usize)),
    _what: std::marker::PhantomData<&'a str>,
}

impl<'a> Bound<'a> {
    pub fn new(limit: usize, what: &'a str) -> Self {
        let previous = (LIMIT.with(Cell::get), WHAT.with(Cell::get));
        WHAT.with(|w| w.set((what.as_ptr(), what.len())));
        LIMIT.with(|l| l.set(limit));
        Self {
            previous,
            _what: std::marker::PhantomData,
        }
    }
}

impl Drop for Bound<'_> {
    fn drop(&mut self) {
        LIMIT.with(|l| l.set(self.previous.0));
        WHAT.with(|w| w.set(self.previous.1));
    }
}
