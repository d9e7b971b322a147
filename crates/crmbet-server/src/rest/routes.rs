//! The route table: one route per `google.api.http` binding in the descriptor set, and the
//! lookup of a request's method and path.

use std::collections::BTreeSet;

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};

use crate::rest::error::RestError;
use crate::rest::template::PathTemplate;

/// Every REST route read from the `google.api.http` options of a descriptor set.
#[derive(Debug, Clone)]
pub struct RestRoutes {
    routes: Vec<RestRoute>,
}

/// One REST binding of a gRPC method: HTTP method, path template and where the request
/// message comes from.
#[derive(Debug, Clone)]
pub struct RestRoute {
    http_method: Method,
    template: PathTemplate,
    body: RequestBody,
    response_body: Option<FieldDescriptor>,
    grpc_method: MethodDescriptor,
    grpc_path: String,
    path_fields: Vec<Vec<FieldDescriptor>>,
}

/// Which part of the request message the HTTP body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestBody {
    /// No body: every field not in the path comes from the query string.
    None,
    /// `body: "*"`: every field not in the path.
    Whole,
    /// `body: "field"`: that top-level field.
    Field(FieldDescriptor),
}

/// What a request's method and path resolve to.
#[derive(Debug)]
pub(crate) enum RouteLookup<'a> {
    /// A route and the decoded values of its path variables, in template order.
    Found {
        route: &'a RestRoute,
        path_values: Vec<String>,
    },
    /// The path exists, but not for this HTTP method.
    MethodNotAllowed { allowed: Vec<Method> },
    /// No template matches the path.
    NotFound,
}

/// One binding read from an `HttpRule` before it is checked against the method.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpBinding {
    http_method: Method,
    path: String,
    body: String,
    response_body: String,
}

const HTTP_EXTENSION: &str = "google.api.http";

impl RestRoutes {
    /// Reads the routes of every method with a `google.api.http` option in an encoded
    /// `FileDescriptorSet` (one that kept extension options, such as
    /// `crmbet_proto::FILE_DESCRIPTOR_SET`).
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, RestError> {
        let pool = DescriptorPool::decode(bytes)?;
        Self::from_pool(&pool)
    }

    /// Reads the routes of every method with a `google.api.http` option in `pool`.
    pub fn from_pool(pool: &DescriptorPool) -> Result<Self, RestError> {
        let extension = pool
            .get_extension_by_name(HTTP_EXTENSION)
            .ok_or(RestError::MissingHttpExtension)?;
        let mut routes: Vec<RestRoute> = Vec::new();
        for service in pool.services() {
            for grpc_method in service.methods() {
                let options = grpc_method.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                let value = options.get_extension(&extension);
                let Some(rule) = value.as_message() else {
                    continue;
                };
                let invalid = |reason: String| RestError::InvalidRule {
                    method: grpc_method.full_name().to_owned(),
                    reason,
                };
                if grpc_method.is_client_streaming() {
                    return Err(invalid(
                        "client-streaming methods cannot be transcoded".to_owned(),
                    ));
                }
                for binding in read_http_rule(rule).map_err(invalid)? {
                    let route = RestRoute::new(&grpc_method, binding).map_err(invalid)?;
                    if let Some(existing) = routes.iter().find(|existing| {
                        existing.http_method == route.http_method
                            && existing.template.as_str() == route.template.as_str()
                    }) {
                        return Err(RestError::DuplicateRoute {
                            http_method: route.http_method.to_string(),
                            template: route.template.as_str().to_owned(),
                            first_method: existing.grpc_method.full_name().to_owned(),
                            second_method: grpc_method.full_name().to_owned(),
                        });
                    }
                    routes.push(route);
                }
            }
        }
        if routes.is_empty() {
            return Err(RestError::NoRoutes);
        }
        Ok(Self { routes })
    }

    /// Every route, in descriptor order, for documentation and tests.
    pub fn routes(&self) -> impl Iterator<Item = &RestRoute> {
        self.routes.iter()
    }

    /// The distinct literal first segments of the templates (such as `api`), which the
    /// HTTP router hands to the transcoder.
    pub(crate) fn path_prefixes(&self) -> BTreeSet<&str> {
        self.routes
            .iter()
            .filter_map(|route| route.template.literal_prefix())
            .collect()
    }

    /// The gRPC method (`/package.Service/Method`) a REST request transcodes to, if any
    /// route takes it; the rate limit uses it to count REST like the RPC behind it.
    pub(crate) fn grpc_path_of(&self, http_method: &Method, path: &str) -> Option<&str> {
        match self.lookup(http_method, path) {
            RouteLookup::Found { route, .. } => Some(route.grpc_path()),
            RouteLookup::MethodNotAllowed { .. } | RouteLookup::NotFound => None,
        }
    }

    /// Finds the route for `http_method` and `path` (percent-encoded, without the query).
    /// When several templates match, the most specific one wins.
    pub(crate) fn lookup(&self, http_method: &Method, path: &str) -> RouteLookup<'_> {
        let mut best: Option<(&RestRoute, Vec<String>)> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for route in &self.routes {
            let Some(path_values) = route.template.match_path(path) else {
                continue;
            };
            if route.http_method != *http_method {
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
                continue;
            }
            let better = best.as_ref().is_none_or(|(current, _)| {
                route.template.specificity() > current.template.specificity()
            });
            if better {
                best = Some((route, path_values));
            }
        }
        if let Some((route, path_values)) = best {
            return RouteLookup::Found { route, path_values };
        }
        if allowed.is_empty() {
            return RouteLookup::NotFound;
        }
        RouteLookup::MethodNotAllowed { allowed }
    }
}

impl RestRoute {
    fn new(grpc_method: &MethodDescriptor, binding: HttpBinding) -> Result<Self, String> {
        let template = PathTemplate::parse(&binding.path).map_err(|error| error.to_string())?;
        if template.literal_prefix().is_none() {
            return Err(format!(
                "path template {:?} must start with a literal segment",
                binding.path
            ));
        }
        let input = grpc_method.input();
        let path_fields = template
            .variable_field_paths()
            .map(|field_path| resolve_path_variable(&input, field_path))
            .collect::<Result<Vec<_>, _>>()?;
        let body = match binding.body.as_str() {
            "" => RequestBody::None,
            "*" => RequestBody::Whole,
            name => {
                let field = input.get_field_by_name(name).ok_or_else(|| {
                    format!(
                        "body field {name:?} is not a field of {}",
                        input.full_name()
                    )
                })?;
                RequestBody::Field(field)
            }
        };
        let response_body = match binding.response_body.as_str() {
            "" => None,
            name => {
                let output = grpc_method.output();
                let field = output.get_field_by_name(name).ok_or_else(|| {
                    format!(
                        "response_body field {name:?} is not a field of {}",
                        output.full_name()
                    )
                })?;
                Some(field)
            }
        };
        let grpc_path = format!(
            "/{}/{}",
            grpc_method.parent_service().full_name(),
            grpc_method.name()
        );
        Ok(Self {
            http_method: binding.http_method,
            template,
            body,
            response_body,
            grpc_method: grpc_method.clone(),
            grpc_path,
            path_fields,
        })
    }

    /// The HTTP method, such as `GET`.
    pub fn http_method(&self) -> &Method {
        &self.http_method
    }

    /// The path template as written in the proto, such as `/api/v1/clusters/{cluster_id}`.
    pub fn path_template(&self) -> &str {
        self.template.as_str()
    }

    /// The dotted field paths bound by the path template, in template order.
    pub fn path_variables(&self) -> impl Iterator<Item = String> + '_ {
        self.template
            .variable_field_paths()
            .map(|field_path| field_path.join("."))
    }

    /// The `body` of the rule: `Some("*")`, `Some(field)`, or `None` without a body.
    pub fn body(&self) -> Option<&str> {
        match &self.body {
            RequestBody::None => None,
            RequestBody::Whole => Some("*"),
            RequestBody::Field(field) => Some(field.name()),
        }
    }

    /// The gRPC method this route calls.
    pub fn grpc_method(&self) -> &MethodDescriptor {
        &self.grpc_method
    }

    /// The gRPC request path, such as `/crmbet.v1.ClusterService/GetCluster`.
    pub fn grpc_path(&self) -> &str {
        &self.grpc_path
    }

    /// True when the method streams responses (served as newline-delimited JSON).
    pub fn is_server_streaming(&self) -> bool {
        self.grpc_method.is_server_streaming()
    }

    /// The `response_body` field of the rule, when only that field is returned.
    pub fn response_body(&self) -> Option<&FieldDescriptor> {
        self.response_body.as_ref()
    }

    pub(crate) fn request_body(&self) -> &RequestBody {
        &self.body
    }

    /// The resolved fields of each path variable, in template order.
    pub(crate) fn path_fields(&self) -> &[Vec<FieldDescriptor>] {
        &self.path_fields
    }
}

/// Reads the primary binding and the `additional_bindings` of an `HttpRule`.
fn read_http_rule(rule: &DynamicMessage) -> Result<Vec<HttpBinding>, String> {
    let mut bindings: Vec<HttpBinding> = read_binding(rule)?.into_iter().collect();
    let additional = rule.get_field_by_name("additional_bindings");
    let additional_rules = additional
        .as_deref()
        .and_then(|value| value.as_list())
        .unwrap_or_default();
    for value in additional_rules {
        let Some(additional_rule) = value.as_message() else {
            continue;
        };
        if let Some(binding) = read_binding(additional_rule)? {
            bindings.push(binding);
        }
    }
    Ok(bindings)
}

/// Reads the pattern, body and response body of one `HttpRule`, ignoring its
/// `additional_bindings`; `None` when no pattern is set.
fn read_binding(rule: &DynamicMessage) -> Result<Option<HttpBinding>, String> {
    let string_field = |name: &str| -> String {
        rule.get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let patterns = [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ];
    let mut pattern: Option<(Method, String)> = patterns
        .into_iter()
        .find(|(name, _)| rule.has_field_by_name(name))
        .map(|(name, http_method)| (http_method, string_field(name)));
    if pattern.is_none() && rule.has_field_by_name("custom") {
        let custom = rule.get_field_by_name("custom");
        let custom_message = custom.as_deref().and_then(|value| value.as_message());
        if let Some(custom_message) = custom_message {
            let kind = custom_message
                .get_field_by_name("kind")
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            let path = custom_message
                .get_field_by_name("path")
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            let http_method = Method::from_bytes(kind.as_bytes())
                .map_err(|_| format!("custom method {kind:?} is not an HTTP method"))?;
            pattern = Some((http_method, path));
        }
    }
    let Some((http_method, path)) = pattern else {
        return Ok(None);
    };
    Ok(Some(HttpBinding {
        http_method,
        path,
        body: string_field("body"),
        response_body: string_field("response_body"),
    }))
}

/// Resolves `cluster_id` or `filter.country` to its chain of fields; the leaf must hold a
/// single value.
fn resolve_path_variable(
    input: &MessageDescriptor,
    field_path: &[String],
) -> Result<Vec<FieldDescriptor>, String> {
    let dotted = field_path.join(".");
    let mut message = input.clone();
    let mut fields = Vec::with_capacity(field_path.len());
    for (position, name) in field_path.iter().enumerate() {
        let field = message.get_field_by_name(name).ok_or_else(|| {
            format!(
                "path variable {dotted:?}: {} has no field {name:?}",
                message.full_name()
            )
        })?;
        if field.is_list() || field.is_map() {
            return Err(format!("path variable {dotted:?} must not be repeated"));
        }
        let is_leaf = position + 1 == field_path.len();
        if !is_leaf {
            let Kind::Message(child) = field.kind() else {
                return Err(format!(
                    "path variable {dotted:?}: {name:?} is not a message"
                ));
            };
            message = child;
        }
        fields.push(field);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use prost_reflect::Value;

    use super::*;
    use crate::rest::fixtures::{crmbet_routes, descriptor_pool};

    #[test]
    fn reads_every_crmbet_binding() {
        let routes = crmbet_routes();
        let get_cluster = routes
            .routes()
            .find(|route| route.grpc_path() == "/crmbet.v1.ClusterService/GetCluster")
            .expect("GetCluster has a route");
        assert_eq!(get_cluster.http_method(), Method::GET);
        assert_eq!(get_cluster.path_template(), "/api/v1/clusters/{cluster_id}");
        assert_eq!(
            get_cluster.path_variables().collect::<Vec<_>>(),
            ["cluster_id"]
        );
        assert_eq!(get_cluster.body(), None);
        let login = routes
            .routes()
            .find(|route| route.grpc_path() == "/crmbet.v1.AuthService/Login")
            .expect("Login has a route");
        assert_eq!(login.http_method(), Method::POST);
        assert_eq!(login.body(), Some("*"));
        let watch = routes
            .routes()
            .find(|route| route.path_template() == "/api/v1/training/runs/{run_id}/events")
            .expect("WatchTrainingRun has a route");
        assert!(watch.is_server_streaming());
        assert_eq!(
            routes.path_prefixes().into_iter().collect::<Vec<_>>(),
            ["api"]
        );
    }

    #[test]
    fn every_crmbet_rpc_has_a_route() {
        let routes = crmbet_routes();
        let pool = descriptor_pool();
        // A client stream has no REST form (EventService.Ingest; IngestBatch is its twin).
        let crmbet_methods: Vec<String> = pool
            .services()
            .filter(|service| service.package_name() == "crmbet.v1")
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .filter(|method| !method.is_client_streaming())
            .map(|method| method.full_name().to_owned())
            .collect();
        let routed: Vec<String> = routes
            .routes()
            .map(|route| route.grpc_method().full_name().to_owned())
            .collect();
        assert_eq!(routed, crmbet_methods);
        assert!(routes.routes().count() >= 22);
    }

    #[test]
    fn looks_up_routes_by_method_and_path() {
        let routes = crmbet_routes();
        let cases: &[(Method, &str, &str)] = &[
            (
                Method::GET,
                "/api/v1/clusters",
                "found /crmbet.v1.ClusterService/ListClusters []",
            ),
            (
                Method::GET,
                "/api/v1/clusters/12",
                "found /crmbet.v1.ClusterService/GetCluster [\"12\"]",
            ),
            (
                Method::GET,
                "/api/v1/clusters/12/users",
                "found /crmbet.v1.ClusterService/ListClusterUsers [\"12\"]",
            ),
            (
                Method::GET,
                "/api/v1/users/search",
                "found /crmbet.v1.UserService/SearchUsers []",
            ),
            (
                Method::GET,
                "/api/v1/user/p-1/segment",
                "found /crmbet.v1.UserService/GetUserSegment [\"p-1\"]",
            ),
            (
                Method::POST,
                "/api/v1/campaigns/3/launch",
                "found /crmbet.v1.CampaignService/LaunchCampaign [\"3\"]",
            ),
            (Method::DELETE, "/api/v1/clusters", "not allowed [GET]"),
            (
                Method::GET,
                "/api/v1/campaigns/3/launch",
                "not allowed [POST]",
            ),
            (Method::GET, "/api/v1/nope", "not found"),
            (Method::GET, "/api/v1/clusters/", "not found"),
        ];
        for (http_method, path, expected) in cases {
            let outcome = match routes.lookup(http_method, path) {
                RouteLookup::Found { route, path_values } => {
                    format!("found {} {path_values:?}", route.grpc_path())
                }
                RouteLookup::MethodNotAllowed { allowed } => format!("not allowed {allowed:?}"),
                RouteLookup::NotFound => "not found".to_owned(),
            };
            assert_eq!(&outcome, expected, "{http_method} {path}");
        }
    }

    #[test]
    fn reads_bindings_of_an_http_rule() {
        let pool = descriptor_pool();
        let rule_descriptor = pool
            .get_message_by_name("google.api.HttpRule")
            .expect("HttpRule in the pool");
        let custom_descriptor = pool
            .get_message_by_name("google.api.CustomHttpPattern")
            .expect("CustomHttpPattern in the pool");
        let mut additional = DynamicMessage::new(rule_descriptor.clone());
        additional.set_field_by_name("get", Value::String("/v1/things".to_owned()));
        let mut custom_rule = DynamicMessage::new(rule_descriptor.clone());
        let mut custom = DynamicMessage::new(custom_descriptor);
        custom.set_field_by_name("kind", Value::String("HEAD".to_owned()));
        custom.set_field_by_name("path", Value::String("/v1/things/{id}".to_owned()));
        custom_rule.set_field_by_name("custom", Value::Message(custom));
        let mut rule = DynamicMessage::new(rule_descriptor);
        rule.set_field_by_name("post", Value::String("/v1/things/{id}".to_owned()));
        rule.set_field_by_name("body", Value::String("thing".to_owned()));
        rule.set_field_by_name("response_body", Value::String("thing".to_owned()));
        rule.set_field_by_name(
            "additional_bindings",
            Value::List(vec![
                Value::Message(additional),
                Value::Message(custom_rule),
            ]),
        );
        let bindings = read_http_rule(&rule).expect("valid rule");
        let summary: Vec<String> = bindings
            .iter()
            .map(|binding| {
                format!(
                    "{} {} body={:?} response_body={:?}",
                    binding.http_method, binding.path, binding.body, binding.response_body
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "POST /v1/things/{id} body=\"thing\" response_body=\"thing\"",
                "GET /v1/things body=\"\" response_body=\"\"",
                "HEAD /v1/things/{id} body=\"\" response_body=\"\"",
            ]
        );
    }

    #[test]
    fn rejects_rules_that_do_not_fit_the_method() {
        let pool = descriptor_pool();
        let get_cluster = pool
            .get_service_by_name("crmbet.v1.ClusterService")
            .and_then(|service| {
                service
                    .methods()
                    .find(|method| method.name() == "GetCluster")
            })
            .expect("GetCluster in the pool");
        let binding = |path: &str, body: &str| HttpBinding {
            http_method: Method::GET,
            path: path.to_owned(),
            body: body.to_owned(),
            response_body: String::new(),
        };
        let cases = [
            (
                binding("/api/v1/clusters/{nope}", ""),
                "has no field \"nope\"",
            ),
            (
                binding("/api/v1/clusters/{cluster_id.x}", ""),
                "is not a message",
            ),
            (
                binding("/{cluster_id}", ""),
                "must start with a literal segment",
            ),
            (binding("/api/{cluster_id", ""), "no closing }"),
            (binding("/api/v1/clusters", "nope"), "body field \"nope\""),
        ];
        for (binding, expected) in cases {
            let path = binding.path.clone();
            let error = RestRoute::new(&get_cluster, binding).expect_err(&path);
            assert!(error.contains(expected), "{path}: {error}");
        }
    }
}
