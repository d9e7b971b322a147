//! HTTP request → protobuf request message: path variables, query parameters and the JSON
//! body are gathered into one proto3 JSON object, which prost-reflect then deserializes.

use http::StatusCode;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::rest::field_value::text_to_json;
use crate::rest::percent::form_decode;
use crate::rest::routes::{RequestBody, RestRoute};
use crate::rest::strict_json;

/// A request the transcoder refuses before calling the service; its gRPC code is always
/// `INVALID_ARGUMENT`, the HTTP status says more (400, 413, 415).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RejectedRequest {
    pub(crate) http_status: StatusCode,
    pub(crate) message: String,
}

impl RejectedRequest {
    /// A 400 Bad Request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            http_status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The parts of an HTTP request that make up the request message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpInput<'a> {
    /// The decoded values of the route's path variables, in template order.
    pub(crate) path_values: &'a [String],
    /// The raw query string, without `?`.
    pub(crate) query: Option<&'a str>,
    /// The `content-type` header, when present and readable.
    pub(crate) content_type: Option<&'a str>,
    /// The whole request body.
    pub(crate) body: &'a [u8],
}

/// Builds the request message of `route` from `input`.
pub(crate) fn build_request_message(
    route: &RestRoute,
    input: HttpInput<'_>,
) -> Result<DynamicMessage, RejectedRequest> {
    let descriptor = route.grpc_method().input();
    let mut root = body_object(route, input)?;
    for (fields, text) in route.path_fields().iter().zip(input.path_values) {
        let Some(leaf) = fields.last() else {
            continue;
        };
        let field_path = dotted_names(fields);
        let value = text_to_json(&field_path, leaf, text).map_err(RejectedRequest::bad_request)?;
        insert_at(&mut root, fields, value);
    }
    for QueryField { fields, values } in query_fields(route, &descriptor, input.query)? {
        let Some(leaf) = fields.last() else {
            continue;
        };
        let field_path = dotted_names(&fields);
        let mut converted = values
            .iter()
            .map(|text| text_to_json(&field_path, leaf, text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RejectedRequest::bad_request)?;
        let value = if leaf.is_list() {
            Value::Array(converted)
        } else if converted.len() == 1 {
            converted.remove(0)
        } else {
            return Err(RejectedRequest::bad_request(format!(
                "{field_path}: expected one value, got {}",
                converted.len()
            )));
        };
        insert_at(&mut root, &fields, value);
    }
    let object = Value::Object(root);
    DynamicMessage::deserialize(descriptor.clone(), &object).map_err(|error| {
        let message = explain_json_error(&descriptor, &object, "")
            .unwrap_or_else(|| format!("invalid request: {error}"));
        RejectedRequest::bad_request(message)
    })
}

/// The JSON object the body contributes: all of it for `body: "*"`, one field for
/// `body: "field"`, nothing for an empty body.
fn body_object(
    route: &RestRoute,
    input: HttpInput<'_>,
) -> Result<Map<String, Value>, RejectedRequest> {
    let mut root = Map::new();
    if input.body.is_empty() {
        return Ok(root);
    }
    if *route.request_body() == RequestBody::None {
        return Err(RejectedRequest::bad_request(format!(
            "{} {} takes no request body; send its fields as query parameters",
            route.http_method(),
            route.path_template()
        )));
    }
    let is_json = input.content_type.is_some_and(|content_type| {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if !is_json {
        return Err(RejectedRequest {
            http_status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "content-type must be application/json, got {}",
                input.content_type.unwrap_or("none")
            ),
        });
    }
    let body: Value = strict_json::parse(input.body).map_err(|error| {
        RejectedRequest::bad_request(format!("request body is not valid JSON: {error}"))
    })?;
    match route.request_body() {
        RequestBody::None => {}
        RequestBody::Whole => {
            let Value::Object(object) = body else {
                return Err(RejectedRequest::bad_request(format!(
                    "request body must be a JSON object, got {}",
                    json_type_name(&body)
                )));
            };
            let descriptor = route.grpc_method().input();
            if let Some(message) = strict_json::field_named_twice(&descriptor, &object, "") {
                return Err(RejectedRequest::bad_request(message));
            }
            root = object;
        }
        RequestBody::Field(field) => {
            if let (Kind::Message(child), Value::Object(object)) = (field.kind(), &body)
                && let Some(message) = strict_json::field_named_twice(&child, object, field.name())
            {
                return Err(RejectedRequest::bad_request(message));
            }
            insert_at(&mut root, std::slice::from_ref(field), body);
        }
    }
    Ok(root)
}

/// The values a query string gives one field.
struct QueryField {
    /// The field and the message fields leading to it (`filter.countries`).
    fields: Vec<FieldDescriptor>,
    /// Every value given, in order.
    values: Vec<String>,
}

/// Parses the query string and resolves every key to its fields; values of one key are
/// kept together, in order of first appearance.
fn query_fields(
    route: &RestRoute,
    descriptor: &MessageDescriptor,
    query: Option<&str>,
) -> Result<Vec<QueryField>, RejectedRequest> {
    let mut grouped: Vec<QueryField> = Vec::new();
    for (key, value) in parse_query(query.unwrap_or_default())? {
        let fields = resolve_query_key(route, descriptor, &key)?;
        match grouped.iter_mut().find(|group| group.fields == fields) {
            Some(group) => group.values.push(value),
            None => grouped.push(QueryField {
                fields,
                values: vec![value],
            }),
        }
    }
    Ok(grouped)
}

/// Splits `a=1&b=2` into decoded pairs; a key without `=` has an empty value.
fn parse_query(query: &str) -> Result<Vec<(String, String)>, RejectedRequest> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = form_decode(raw_key);
            let value = form_decode(raw_value);
            match (key, value) {
                (Some(key), Some(value)) => Ok((key, value)),
                _ => Err(RejectedRequest::bad_request(format!(
                    "query parameter {pair:?} is not valid percent-encoded UTF-8"
                ))),
            }
        })
        .collect()
}

/// Resolves a query key such as `page_size`, `pageSize` or `filter.countries` to its fields,
/// refusing keys that name no field or a field the path or body already sets.
fn resolve_query_key(
    route: &RestRoute,
    descriptor: &MessageDescriptor,
    key: &str,
) -> Result<Vec<FieldDescriptor>, RejectedRequest> {
    if *route.request_body() == RequestBody::Whole {
        return Err(RejectedRequest::bad_request(format!(
            "unknown query parameter {key:?}: {} {} takes its fields in the JSON body",
            route.http_method(),
            route.path_template()
        )));
    }
    let unknown = || {
        let accepted = accepted_query_fields(route, descriptor);
        let hint = if accepted.is_empty() {
            "this route takes no query parameters".to_owned()
        } else {
            format!("expected one of {}", accepted.join(", "))
        };
        RejectedRequest::bad_request(format!("unknown query parameter {key:?}; {hint}"))
    };
    let mut message = descriptor.clone();
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let names: Vec<&str> = key.split('.').collect();
    for (position, name) in names.iter().enumerate() {
        let field = find_field(&message, name).ok_or_else(unknown)?;
        let is_leaf = position + 1 == names.len();
        if !is_leaf {
            match field.kind() {
                Kind::Message(child) if !field.is_list() && !field.is_map() => message = child,
                _ => return Err(unknown()),
            }
        }
        fields.push(field);
    }
    if let RequestBody::Field(body_field) = route.request_body()
        && fields.first() == Some(body_field)
    {
        return Err(RejectedRequest::bad_request(format!(
            "query parameter {key:?} is set by the request body"
        )));
    }
    let bound_by_path = route.path_fields().iter().any(|path_fields| {
        let shared = path_fields.len().min(fields.len());
        path_fields[..shared] == fields[..shared]
    });
    if bound_by_path {
        return Err(RejectedRequest::bad_request(format!(
            "query parameter {key:?} is set by the path {}",
            route.path_template()
        )));
    }
    Ok(fields)
}

/// The top-level fields a query string may set: those the path and body leave free.
fn accepted_query_fields(route: &RestRoute, descriptor: &MessageDescriptor) -> Vec<String> {
    descriptor
        .fields()
        .filter(|field| {
            let in_body = matches!(
                route.request_body(),
                RequestBody::Field(body_field) if body_field == field
            );
            let in_path = route
                .path_fields()
                .iter()
                .any(|path_fields| path_fields.len() == 1 && path_fields[0] == *field);
            !in_body && !in_path
        })
        .map(|field| field.name().to_owned())
        .collect()
}

/// Finds a field by its proto name or its JSON (lowerCamelCase) name.
fn find_field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
}

fn dotted_names(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(FieldDescriptor::name)
        .collect::<Vec<_>>()
        .join(".")
}

/// Sets `value` at the chain `fields` inside `root`, creating objects on the way. A key
/// spelt with the JSON name (`clusterId`) is replaced, so no field appears twice.
fn insert_at(root: &mut Map<String, Value>, fields: &[FieldDescriptor], value: Value) {
    let Some((leaf, parents)) = fields.split_last() else {
        return;
    };
    let mut object = root;
    for parent in parents {
        normalise_key(object, parent);
        let entry = object
            .entry(parent.name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(child) = entry else {
            return;
        };
        object = child;
    }
    object.remove(leaf.json_name());
    object.insert(leaf.name().to_owned(), value);
}

/// Moves a value stored under the JSON name of `field` to its proto name.
fn normalise_key(object: &mut Map<String, Value>, field: &FieldDescriptor) {
    if field.json_name() == field.name() || object.contains_key(field.name()) {
        return;
    }
    if let Some(value) = object.remove(field.json_name()) {
        object.insert(field.name().to_owned(), value);
    }
}

/// Finds the first field of `object` that does not deserialize and says why, with its
/// path (`filter.countries`, `cluster_ids[2]`). `None` when every field alone is fine.
fn explain_json_error(
    descriptor: &MessageDescriptor,
    object: &Value,
    prefix: &str,
) -> Option<String> {
    let Value::Object(map) = object else {
        return None;
    };
    for (key, value) in map {
        let field_path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(field) = find_field(descriptor, key) else {
            let known: Vec<String> = descriptor
                .fields()
                .map(|field| field.name().to_owned())
                .collect();
            return Some(format!(
                "unknown field {field_path:?}; expected one of {}",
                known.join(", ")
            ));
        };
        let mut single = Map::new();
        single.insert(key.clone(), value.clone());
        let Err(error) = DynamicMessage::deserialize(descriptor.clone(), &Value::Object(single))
        else {
            continue;
        };
        if let Some(nested) = explain_nested(&field, value, &field_path) {
            return Some(nested);
        }
        return Some(format!("{field_path}: {error}"));
    }
    None
}

/// Looks inside a message-typed field (or the elements of a repeated one) for the
/// offending nested field.
fn explain_nested(field: &FieldDescriptor, value: &Value, field_path: &str) -> Option<String> {
    let Kind::Message(child) = field.kind() else {
        return None;
    };
    if field.is_map() || child.full_name().starts_with("google.protobuf.") {
        return None;
    }
    if !field.is_list() {
        return explain_json_error(&child, value, field_path);
    }
    let Value::Array(items) = value else {
        return None;
    };
    items.iter().enumerate().find_map(|(index, item)| {
        explain_json_error(&child, item, &format!("{field_path}[{index}]"))
    })
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::ReflectMessage;
    use serde_json::json;

    use super::*;
    use crate::rest::fixtures::crmbet_routes;

    /// Runs one request through the route for `grpc_path` and renders the message as
    /// proto3 JSON, or the rejection as `status: message`.
    fn transcode(grpc_path: &str, input: HttpInput<'_>) -> Result<Value, String> {
        let routes = crmbet_routes();
        let route = routes
            .routes()
            .find(|route| route.grpc_path() == grpc_path)
            .expect("route exists");
        match build_request_message(route, input) {
            Ok(message) => {
                assert_eq!(message.descriptor(), route.grpc_method().input());
                Ok(serde_json::to_value(&message).expect("serializes"))
            }
            Err(rejected) => Err(format!(
                "{}: {}",
                rejected.http_status.as_u16(),
                rejected.message
            )),
        }
    }

    fn input<'a>(
        path_values: &'a [String],
        query: Option<&'a str>,
        body: &'a str,
    ) -> HttpInput<'a> {
        HttpInput {
            path_values,
            query,
            content_type: (!body.is_empty()).then_some("application/json"),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn builds_messages_from_path_query_and_body() {
        let cluster = ["12".to_owned()];
        let campaign = ["5".to_owned()];
        let model = ["3".to_owned()];
        let cases: &[(&str, HttpInput<'_>, Value)] = &[
            (
                "/crmbet.v1.ClusterService/GetCluster",
                input(&cluster, None, ""),
                json!({"clusterId": "12"}),
            ),
            (
                "/crmbet.v1.ClusterService/ListClusterUsers",
                input(&cluster, Some("page_size=50&pageToken=abc%3D"), ""),
                json!({"clusterId": "12", "pageSize": 50, "pageToken": "abc="}),
            ),
            (
                "/crmbet.v1.UserService/SearchUsers",
                input(
                    &[],
                    Some("last_active_after=2024-05-01T00%3A00%3A00Z&country=GB&min_monetary=10.5"),
                    "",
                ),
                json!({"lastActiveAfter": "2024-05-01T00:00:00Z", "country": "GB", "minMonetary": "10.5"}),
            ),
            (
                "/crmbet.v1.CampaignService/ListCampaigns",
                input(&[], Some("status=CAMPAIGN_STATUS_DRAFT"), ""),
                json!({"status": "CAMPAIGN_STATUS_DRAFT"}),
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], None, r#"{"username": "admin", "password": "secret"}"#),
                json!({"username": "admin", "password": "secret"}),
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], None, ""),
                json!({}),
            ),
            (
                "/crmbet.v1.CampaignService/CreateCampaign",
                input(
                    &[],
                    None,
                    r#"{"name": "n", "clusterIds": [1, "2"], "filter": {"countries": ["GB"]}, "channel": "CHANNEL_SMS"}"#,
                ),
                json!({"name": "n", "clusterIds": ["1", "2"], "filter": {"countries": ["GB"]}, "channel": "CHANNEL_SMS"}),
            ),
            (
                "/crmbet.v1.CampaignService/LaunchCampaign",
                input(&campaign, None, r#"{"campaignId": 99}"#),
                json!({"campaignId": "5"}),
            ),
            (
                "/crmbet.v1.TrainingService/ActivateModel",
                input(&model, None, "{}"),
                json!({"modelId": "3"}),
            ),
        ];
        for (grpc_path, request, expected) in cases {
            assert_eq!(
                transcode(grpc_path, *request).as_ref(),
                Ok(expected),
                "{grpc_path} {request:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_requests_with_the_field_and_what_was_expected() {
        let cluster = ["abc".to_owned()];
        let good_cluster = ["12".to_owned()];
        let cases: &[(&str, HttpInput<'_>, &str)] = &[
            (
                "/crmbet.v1.ClusterService/GetCluster",
                input(&cluster, None, ""),
                "400: cluster_id: expected an integer, got \"abc\"",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                input(&[], Some("model_id=abc"), ""),
                "400: model_id: expected an integer, got \"abc\"",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                input(&[], Some("colour=red"), ""),
                "400: unknown query parameter \"colour\"; expected one of page_size, page_token, model_id",
            ),
            (
                "/crmbet.v1.ClusterService/GetCluster",
                input(&good_cluster, Some("x=1"), ""),
                "400: unknown query parameter \"x\"; this route takes no query parameters",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusterUsers",
                input(&good_cluster, Some("cluster_id=3"), ""),
                "400: query parameter \"cluster_id\" is set by the path /api/v1/clusters/{cluster_id}/users",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                input(&[], Some("page_size=1&page_size=2"), ""),
                "400: page_size: expected one value, got 2",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                input(&[], Some("page_token=%FF"), ""),
                "400: query parameter \"page_token=%FF\" is not valid percent-encoded UTF-8",
            ),
            (
                "/crmbet.v1.UserService/SearchUsers",
                input(&[], Some("last_active_after=yesterday"), ""),
                "400: last_active_after: expected an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, got \"yesterday\"",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], Some("username=a"), ""),
                "400: unknown query parameter \"username\": POST /api/v1/auth/login takes its fields in the JSON body",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], None, "{not json"),
                "400: request body is not valid JSON: key must be a string at line 1 column 2",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], None, "[1]"),
                "400: request body must be a JSON object, got an array",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                input(&[], None, r#"{"user": "a"}"#),
                "400: unknown field \"user\"; expected one of username, password",
            ),
            (
                "/crmbet.v1.CampaignService/CreateCampaign",
                input(&[], None, r#"{"filter": {"countries": "GB"}}"#),
                "400: filter.countries: invalid type: string \"GB\", expected a list",
            ),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                input(&[], None, "{}"),
                "400: GET /api/v1/clusters takes no request body; send its fields as query parameters",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                HttpInput {
                    path_values: &[],
                    query: None,
                    content_type: Some("text/plain"),
                    body: b"{}",
                },
                "415: content-type must be application/json, got text/plain",
            ),
            (
                "/crmbet.v1.AuthService/Login",
                HttpInput {
                    path_values: &[],
                    query: None,
                    content_type: None,
                    body: b"{}",
                },
                "415: content-type must be application/json, got none",
            ),
        ];
        for (grpc_path, request, expected) in cases {
            assert_eq!(
                transcode(grpc_path, *request),
                Err((*expected).to_owned()),
                "{grpc_path} {request:?}"
            );
        }
    }

    #[test]
    fn accepts_json_content_type_with_parameters() {
        let request = HttpInput {
            path_values: &[],
            query: None,
            content_type: Some("Application/JSON; charset=utf-8"),
            body: br#"{"username": "a"}"#,
        };
        assert_eq!(
            transcode("/crmbet.v1.AuthService/Login", request),
            Ok(json!({"username": "a"}))
        );
    }
}
