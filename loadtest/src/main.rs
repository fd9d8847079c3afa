fn main() {
    println!("hookvault-loadtest: not built yet");
}
