//! The UniFFI bindings generator, pinned to the workspace's UniFFI version:
//! `cargo run -p kintsugi-ffi --bin uniffi-bindgen -- generate --library LIB --language kotlin`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
