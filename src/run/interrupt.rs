//! Ctrl-C (SIGINT) and SIGTERM during a long run: the first signal asks the training loop to
//! stop at the end of the step it is in — it checkpoints that step and exits with 128 + the
//! signal's number and a line saying how to resume — and a second signal ends the process at
//! once (the checkpoints are written atomically, so even that loses only the current steps).
//!
//! The CLI installs the handlers ([`install`]) for the commands that run a loop; everything
//! else keeps the default (end at once). The loops poll [`requested`] between steps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The signal that arrived first (0: none), shared with the handlers.
static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// A stop asked for by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    /// The signal's number (2 for SIGINT, 15 for SIGTERM).
    pub signal: i32,
}

impl Interrupt {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(&self) -> &'static str {
        match self.signal {
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        }
    }
}

/// Catch SIGINT and SIGTERM from now on: the first one is recorded for [`requested`] (and a
/// line tells the user the run is stopping after its current step); a second one exits at
/// once with 128 + its number.
#[cfg(unix)]
pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;

    if SIGNAL.get().is_some() {
        return Ok(());
    }
    let got = SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0))).clone();
    let fail = |e: std::io::Error| Error::Invalid(format!("installing the signal handlers: {e}"));
    for sig in [SIGINT, SIGTERM] {
        // registered first, so it sees the flag as it was before this signal set it
        let first = Arc::new(std::sync::atomic::AtomicBool::new(false));
        flag::register_conditional_shutdown(sig, 128 + sig, first.clone()).map_err(fail)?;
        flag::register(sig, first).map_err(fail)?;
        flag::register_usize(sig, got.clone(), sig as usize).map_err(fail)?;
    }
    // the handler cannot print; a watcher tells the user why nothing ends yet
    std::thread::Builder::new()
        .name("interrupt-notice".into())
        .spawn(move || loop {
            let sig = got.load(Ordering::Relaxed);
            if sig != 0 {
                let name = Interrupt { signal: sig as i32 }.name();
                eprintln!(
                    "{name}: stopping after the current step and checkpointing it \
                     (send it again to quit at once)"
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        })
        .map_err(|e| Error::Invalid(format!("starting the signal watcher: {e}")))?;
    Ok(())
}

/// No signals to catch here: Ctrl-C ends the process as before.
#[cfg(not(unix))]
pub fn install() -> Result<()> {
    Ok(())
}

/// The first signal caught since [`install`], if any.
pub fn requested() -> Option<Interrupt> {
    let sig = SIGNAL.get()?.load(Ordering::Relaxed);
    (sig != 0).then_some(Interrupt { signal: sig as i32 })
}
