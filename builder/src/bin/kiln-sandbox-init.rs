//! The sandbox init as its own binary, for tests (kiln itself re-executes with
//! `__kiln-sandbox-init` instead).

fn main() {
    builder::sandbox::init_main()
}
