//! REST transcoded from the `google.api.http` annotations of the contracts.
//!
//! Invariant: REST has no handlers of its own. A request is matched against the route
//! table read from the descriptor set, turned into the method's request message (path
//! variables, query parameters, JSON body), and sent to the same in-process tonic service
//! that gRPC clients reach; the reply comes back as JSON. HTTP statuses derive from gRPC
//! codes in one place, [`http_status_for`].
//!
//! ```text
//! GET /api/v1/clusters/12?x=1 ─ routes ─ request ─▶ /crmbet.v1.ClusterService/GetCluster
//!                                                          │ (tonic's client, in process)
//!                   200 {"cluster": {...}} ◀─ response ◀───┘ messages + grpc-status
//! ```

mod error;
mod field_value;
mod grpc_call;
mod metadata;
mod percent;
mod request;
mod response;
mod router;
mod routes;
mod status;
mod strict_json;
mod template;

#[cfg(test)]
mod fixtures;

pub use error::RestError;
pub use router::{DEFAULT_MAX_BODY_BYTES, RestConfig, rest_router};
pub use routes::{RestRoute, RestRoutes};
pub use status::{code_name, error_body, error_response, http_status_for};
