//! Compiles the contracts under `proto/` with protox (no system protoc) and generates the
//! tonic clients and servers, plus the encoded file descriptor set that reflection and the
//! REST transcoder read.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &[
    "crmbet/v1/common.proto",
    "crmbet/v1/cluster.proto",
    "crmbet/v1/user.proto",
    "crmbet/v1/campaign.proto",
    "crmbet/v1/training.proto",
    "crmbet/v1/auth.proto",
    "crmbet/v1/webhook.proto",
    "crmbet/v1/event.proto",
    "crmbet/v1/notification.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace_root = manifest_dir.join("../..");
    let proto_root = workspace_root.join("proto");
    let third_party_root = workspace_root.join("third_party");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed={}", third_party_root.display());

    let mut compiler = protox::Compiler::new([&proto_root, &third_party_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTO_FILES)?;
    // Encoded by protox itself: prost_types drops extension options such as
    // google.api.http on a round trip, and the REST transcoder needs them.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("crmbet_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let file_descriptor_set = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds(file_descriptor_set)?;
    Ok(())
}
