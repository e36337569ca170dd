//! The `codeward` binary. Subcommands arrive with the runtime; for now it prints its version.

fn main() {
    println!("codeward {}", env!("CARGO_PKG_VERSION"));
}
