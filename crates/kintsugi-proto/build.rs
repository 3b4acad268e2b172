//! Compiles `proto/` into tonic/prost code with protox, so no `protoc` is needed on the machine,
//! and writes the encoded `FileDescriptorSet` to `OUT_DIR` for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("kintsugi/sync/v1/sync.proto"),
        root.join("kintsugi/sync/v1/roster.proto"),
        root.join("kintsugi/admin/v1/admin.proto"),
    ];
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("kintsugi_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
