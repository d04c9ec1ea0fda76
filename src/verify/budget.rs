//! The per-call time budget of the verifier (`reward.policy.time_budget_ms`). Every input is
//! already capped in size, so a call normally takes microseconds to a few milliseconds; the
//! budget is the last line: once it is spent, every comparison still to come answers "not
//! equal", and the verdict is wrong with the reason `time budget exceeded` — it fails closed,
//! never open, and never hangs a training step.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static SPENT: Cell<bool> = const { Cell::new(false) };
}

/// The budget of one call on this thread, from now until the guard is dropped.
pub(super) struct Budget {
    outer: Option<Instant>,
}

impl Budget {
    pub(super) fn start(limit: Duration) -> Self {
        let outer = DEADLINE.with(|d| d.replace(Instant::now().checked_add(limit)));
        SPENT.with(|s| s.set(false));
        Self { outer }
    }

    /// Whether the budget ran out during the call.
    pub(super) fn spent(&self) -> bool {
        SPENT.with(Cell::get)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.outer));
        SPENT.with(|s| s.set(false));
    }
}

/// Whether the current call's budget is spent (always `false` outside a call).
pub(super) fn exhausted() -> bool {
    if SPENT.with(Cell::get) {
        return true;
    }
    let over = DEADLINE
        .with(Cell::get)
        .is_some_and(|d| Instant::now() >= d);
    if over {
        SPENT.with(|s| s.set(true));
    }
    over
}
