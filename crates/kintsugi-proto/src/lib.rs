//! The gRPC contract of Kintsugi, generated from `proto/` at build time.
//!
//! `kintsugi.sync.v1` is the only thing the blind server and the client core share: messages,
//! the `PairingService`, `SpaceService` and `SyncService` clients and servers. The operator's
//! `AdminService` (`kintsugi.admin.v1`) lives in [`admin`]; the server and `kintsugi admin`
//! use it, the client core never does. [`FILE_DESCRIPTOR_SET`] describes both packages for
//! gRPC server reflection.

#![allow(missing_debug_implementations, clippy::all)]

/// Version 1 of the sync protocol.
pub mod v1 {
    tonic::include_proto!("kintsugi.sync.v1");
}

/// The operator's calls: statistics, online backup and vacuum.
pub mod admin {
    /// Version 1 of the admin protocol.
    pub mod v1 {
        tonic::include_proto!("kintsugi.admin.v1");
    }
}

pub use v1::*;

/// Metadata key that carries a device's bearer token (`authorization: Bearer <token>`), and
/// on the admin service the admin token in the same form.
pub const AUTHORIZATION: &str = "authorization";

/// The encoded `google.protobuf.FileDescriptorSet` of every `.proto` file in this crate, for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kintsugi_descriptor.bin"));
