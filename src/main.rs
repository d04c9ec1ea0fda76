//! The `mgrpo` binary; everything it does lives in the library's `cli` module.

/// The system allocator, with the bound a chat template renders under (`run::alloc_bound`).
#[global_allocator]
static ALLOC: mgrpo::run::alloc_bound::BoundedAlloc = mgrpo::run::alloc_bound::BoundedAlloc;

fn main() {
    mgrpo::cli::main();
}
