//! The gRPC contract of Kintsugi (`kintsugi.sync.v1`), generated from `proto/` at build time.
//!
//! This crate is the only thing the blind server and the client core share: messages, the
//! `PairingService`, `SpaceService` and `SyncService` clients and servers, and nothing else.

#![allow(missing_debug_implementations, clippy::all)]

/// Version 1 of the sync protocol.
pub mod v1 {
    tonic::include_proto!("kintsugi.sync.v1");
}

pub use v1::*;

/// Metadata key that carries a device's bearer token (`authorization: Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";
