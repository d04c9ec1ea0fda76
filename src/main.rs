//! The `mgrpo` binary; everything it does lives in the library's `cli` module.

fn main() {
    mgrpo::cli::main();
}
