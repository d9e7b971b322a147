//! The crmbet contracts as Rust: messages, tonic clients and servers, and the encoded file
//! descriptor set.
//!
//! Generated code lives only here; nobody edits it by hand. The `.proto` files under
//! `proto/crmbet/v1/` are the source of truth.

/// Package `crmbet.v1`.
pub mod v1 {
    tonic::include_proto!("crmbet.v1");
}

/// The encoded `FileDescriptorSet` of every contract and its imports (google.api,
/// google.protobuf), for gRPC reflection and the REST transcoder.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/crmbet_descriptor.bin"));
