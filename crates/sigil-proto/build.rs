//! Generates the gRPC code from `proto/` with a vendored `protoc`, so a machine with only cargo
//! builds Sigil.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("sigil/v1/sigil.proto"),
        root.join("sigil/v1/raft.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let descriptors = PathBuf::from(std::env::var("OUT_DIR")?).join("sigil_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(descriptors)
        .compile_with_config(config, &files, &[root])?;
    Ok(())
}
