//! Helpers the server's tests share.

pub mod grpc_call;
pub mod private_redis;
pub mod private_redis_cluster;
pub mod scratch_database;
