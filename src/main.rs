//! The `hookvault` binary: everything lives in the library; this only hands over the arguments.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(hookvault::run(args));
}
