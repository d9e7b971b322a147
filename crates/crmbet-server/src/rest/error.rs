//! Why a route table cannot be built from a descriptor set.

/// An error building the REST routes; these are mistakes in the contracts or in how the
/// descriptor set was encoded, found once at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The bytes are not a valid `FileDescriptorSet`.
    #[error("decoding the file descriptor set: {0}")]
    Descriptor(#[from] prost_reflect::DescriptorError),
    /// The set does not define `google.api.http`.
    #[error(
        "the descriptor set does not define the google.api.http extension; include google/api/annotations.proto"
    )]
    MissingHttpExtension,
    /// No method carries a `google.api.http` option, often because the set was encoded
    /// through `prost_types`, which drops extension options.
    #[error(
        "no method in the descriptor set has a google.api.http option; encode the set with its extension options (protox::Compiler::encode_file_descriptor_set)"
    )]
    NoRoutes,
    /// A rule that cannot be served.
    #[error("{method}: invalid google.api.http rule: {reason}")]
    InvalidRule {
        /// The full name of the gRPC method.
        method: String,
        /// What is wrong with the rule.
        reason: String,
    },
    /// Two rules bind the same HTTP method and template.
    #[error("{first_method} and {second_method} both bind {http_method} {template}")]
    DuplicateRoute {
        /// The HTTP method.
        http_method: String,
        /// The path template.
        template: String,
        /// The gRPC method that bound it first.
        first_method: String,
        /// The gRPC method that bound it again.
        second_method: String,
    },
}
