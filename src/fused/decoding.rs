//! The decoding scope: while it is open, the host backends keep every linear weight the few-row
//! kernel reads packed into panels ([`Panels`]), so each decode step streams contiguous memory
//! instead of re-packing or striding through the row-major weight.
//!
//! A packed copy is found again by the address of the weight's buffer, and the entry holds a
//! clone of that buffer: a buffer someone else still holds is never freed (so its address cannot
//! be reused by another weight) nor written in place (the backends write in place only what one
//! tensor alone holds). Only weights lent without a copy are packed (a copy would be a new buffer
//! every call). The copies live on the thread that opened the scope, the one that runs the
//! model's operations, and are dropped when the scope closes: they cost one more copy of the
//! weights while generating, none outside.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::linear_kernel::Panels;

/// A weight: the address of its first value, and its shape.
type Key = (usize, usize, usize);

struct Entry {
    /// A clone of the weight's buffer, held so that the address stays this weight's.
    _held: Box<dyn Any>,
    panels: Rc<Panels>,
}

thread_local! {
    /// `Some` while a scope is open on this thread.
    static PACKED: RefCell<Option<HashMap<Key, Entry>>> = const { RefCell::new(None) };
}

/// Run `f` with the decoding scope open on this thread (nested scopes share the outermost).
pub fn decoding<R>(f: impl FnOnce() -> R) -> R {
    let opened = PACKED.with(|p| {
        let mut p = p.borrow_mut();
        let open = p.is_none();
        if open {
            *p = Some(HashMap::new());
        }
        open
    });
    // closes the scope however `f` ends (a panic included)
    struct Close(bool);
    impl Drop for Close {
        fn drop(&mut self) {
            if self.0 {
                PACKED.with(|p| *p.borrow_mut() = None);
            }
        }
    }
    let _close = Close(opened);
    f()
}

/// The packed copy of the row-major `[k, n]` weight `w` (`held` owns its buffer), packed on
/// first sight; `None` outside a scope.
pub(super) fn panels(
    w: &[f32],
    [k, n]: [usize; 2],
    held: impl FnOnce() -> Box<dyn Any>,
) -> Option<Rc<Panels>> {
    PACKED.with(|p| {
        let mut p = p.borrow_mut();
        let map = p.as_mut()?;
        let key = (w.as_ptr() as usize, k, n);
        let entry = map.entry(key).or_insert_with(|| Entry {
            _held: held(),
            panels: Rc::new(Panels::pack(w, k, n)),
        });
        Some(entry.panels.clone())
    })
}

/// Run `f` on a thread of the current rayon pool (in place when already on one; else on a
/// worker of the global pool while the caller waits). Called from outside the pool, every
/// operation that splits its work (the kernels, `gemm`) hands all of it to the workers and
/// sleeps until they finish: two thread switches per operation, which at a decode step's sizes
/// cost as much as the operation.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// [`on_pool`] when `cond`, else `f` on the calling thread.
pub fn on_pool_if<R: Send>(cond: bool, f: impl FnOnce() -> R + Send) -> R {
    if cond {
        on_pool(f)
    } else {
        f()
    }
}

/// Whether a scope is open on this thread.
pub(super) fn is_open() -> bool {
    PACKED.with(|p| p.borrow().is_some())
}

/// Weights packed in this thread's open scope (0 outside one).
pub fn packed_weights() -> usize {
    PACKED.with(|p| p.borrow().as_ref().map_or(0, HashMap::len))
}
