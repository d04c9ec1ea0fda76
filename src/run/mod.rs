//! What keeps a run directory whole: files written atomically (`fsutil`), JSONL read with
//! the file and line in every error (`jsonl`), one writer per run (`lock`) and the signals
//! that stop a run at a step boundary (`interrupt`), and the allocation bound untrusted code
//! (a checkpoint's chat template) runs under (`alloc_bound`), and where other commands may
//! write their output directories (`dest`); the machine's memory (`machine`).

pub mod alloc_bound;
pub(crate) mod dest;
pub(crate) mod fsutil;
pub(crate) mod interrupt;
pub(crate) mod jsonl;
pub(crate) mod lock;
pub(crate) mod machine;
