// A tiny program for the demo tools to read, search and edit.
fn main() {
    // TODO: greet by name
    println!("hello from the demo project");
}
