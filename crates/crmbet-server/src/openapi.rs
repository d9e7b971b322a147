//! The OpenAPI 3.1 document of the REST API, derived from the same descriptors and
//! `google.api.http` routes the REST layer transcodes, so it cannot drift from what is
//! served: every route, its path and query parameters, request and response schemas in the
//! proto3 JSON mapping the REST layer writes (proto field names, 64-bit integers as
//! numbers, enums by name, defaults included, unset messages as `null`), the bearer
//! scheme (with the permission table saying which routes are open), and the error body.
//! Served at `/api-docs/openapi.json`; `/api-docs` is Swagger UI from assets in the binary.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::auth::permissions::{Access, rule_for};
use crate::rest::{RestRoute, RestRoutes};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";
/// Where Swagger UI is served.
pub const UI_PATH: &str = "/api-docs";

/// The component name of a message.
fn schema_name(message: &MessageDescriptor) -> String {
    message.full_name().to_owned()
}

fn reference(message: &MessageDescriptor) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", schema_name(message)) })
}

/// Builds the document for `routes`.
pub fn openapi_document(routes: &RestRoutes) -> Value {
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for route in routes.routes() {
        let operation = operation(route, &mut schemas);
        paths
            .entry(route.path_template().to_owned())
            .or_default()
            .insert(route.http_method().as_str().to_ascii_lowercase(), operation);
    }
    schemas.insert(
        "Error".to_owned(),
        json!({
            "type": "object",
            "description": "Every error answer: the gRPC code's name, a message saying what the caller can do, and details.",
            "properties": {
                "code": {"type": "string", "examples": ["INVALID_ARGUMENT"]},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
            "required": ["code", "message"],
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "crmbet",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST transcoded from the gRPC contracts in proto/crmbet/v1 (the same RPCs over gRPC and grpc-web). Log in with POST /api/v1/auth/login and send the access token as a bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"},
            },
        },
        "security": [{"bearerAuth": []}],
    })
}

fn operation(route: &RestRoute, schemas: &mut BTreeMap<String, Value>) -> Value {
    let method = route.grpc_method();
    let input = method.input();
    let output = method.output();
    let path_fields: Vec<String> = route.path_variables().collect();
    let mut parameters: Vec<Value> = path_fields
        .iter()
        .map(|dotted| {
            let field = resolve(&input, dotted);
            json!({
                "name": dotted,
                "in": "path",
                "required": true,
                "schema": field.as_ref().map_or(json!({"type": "string"}), |field| scalar_schema(field, schemas)),
            })
        })
        .collect();
    let mut operation = Map::new();
    operation.insert(
        "operationId".to_owned(),
        json!(format!(
            "{}_{}",
            method.parent_service().name(),
            method.name()
        )),
    );
    operation.insert("tags".to_owned(), json!([method.parent_service().name()]));
    operation.insert("summary".to_owned(), json!(method.name()));
    match route.body() {
        None => {
            for field in input.fields() {
                if path_fields.iter().any(|path| path == field.name()) {
                    continue;
                }
                if let Some(schema) = query_schema(&field, schemas) {
                    parameters.push(json!({
                        "name": field.name(),
                        "in": "query",
                        "required": false,
                        "schema": schema,
                    }));
                }
            }
        }
        Some(body) => {
            let schema = if body == "*" {
                body_schema(&input, &path_fields, schemas)
            } else {
                input
                    .get_field_by_name(body)
                    .map_or(json!({}), |field| field_schema(&field, schemas))
            };
            operation.insert(
                "requestBody".to_owned(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        }
    }
    operation.insert("parameters".to_owned(), Value::Array(parameters));
    register(&output, schemas);
    let response_schema = match route.response_body() {
        Some(field) => field_schema(field, schemas),
        None => reference(&output),
    };
    let success = if route.is_server_streaming() {
        json!({
            "description": "one JSON message per line, then the end of the stream",
            "content": {"application/x-ndjson": {"schema": response_schema}},
        })
    } else {
        json!({
            "description": "OK",
            "content": {"application/json": {"schema": response_schema}},
        })
    };
    operation.insert(
        "responses".to_owned(),
        json!({
            "200": success,
            "default": {
                "description": "an error; the HTTP status follows the gRPC code",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }),
    );
    let rule = rule_for(route.grpc_path());
    if route.grpc_path() == "/crmbet.v1.SmarticoWebhookService/ReceiveEvent" {
        operation.insert("security".to_owned(), json!([{"webhookSecret": []}]));
        operation.insert(
            "description".to_owned(),
            json!("Smartico's events. Authenticated by X-Webhook-Secret, or instead by X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + raw body)> within 300 s."),
        );
    } else if rule.access == Access::Public {
        operation.insert("security".to_owned(), json!([]));
    }
    Value::Object(operation)
}

/// The field of `message` at a dotted path.
fn resolve(message: &MessageDescriptor, dotted: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut found = None;
    for name in dotted.split('.') {
        let field = current.get_field_by_name(name)?;
        if let Kind::Message(inner) = field.kind() {
            current = inner;
        }
        found = Some(field);
    }
    found
}

/// The request body of `body: "*"`: the message's fields but those the path sets.
fn body_schema(
    message: &MessageDescriptor,
    path_fields: &[String],
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    if path_fields.is_empty() {
        register(message, schemas);
        return reference(message);
    }
    let properties: Map<String, Value> = message
        .fields()
        .filter(|field| !path_fields.iter().any(|path| path == field.name()))
        .map(|field| (field.name().to_owned(), field_schema(&field, schemas)))
        .collect();
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// A query parameter's schema: scalars, enums, timestamps and repeated scalars.
fn query_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Option<Value> {
    if field.is_map() {
        return None;
    }
    if let Kind::Message(message) = field.kind()
        && message.full_name() != "google.protobuf.Timestamp"
    {
        return None;
    }
    let single = scalar_schema(field, schemas);
    Some(if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    })
}

/// Adds the schema of `message` (and of the messages it uses) to `schemas`.
fn register(message: &MessageDescriptor, schemas: &mut BTreeMap<String, Value>) {
    let name = schema_name(message);
    if schemas.contains_key(&name) || well_known(message).is_some() {
        return;
    }
    // A placeholder first, so a recursive message does not loop.
    schemas.insert(name.clone(), json!({}));
    let properties: Map<String, Value> = message
        .fields()
        .map(|field| (field.name().to_owned(), field_schema(&field, schemas)))
        .collect();
    schemas.insert(name, json!({"type": "object", "properties": properties}));
}

/// The schema of a field, as the REST layer writes it.
fn field_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return json!({"type": "object"});
        };
        let value = entry
            .get_field_by_name("value")
            .map_or(json!({}), |value| field_schema(&value, schemas));
        return json!({"type": "object", "additionalProperties": value});
    }
    let single = scalar_schema(field, schemas);
    if field.is_list() {
        return json!({"type": "array", "items": single});
    }
    if let Kind::Message(_) = field.kind() {
        // An unset message field is written as null.
        return json!({"oneOf": [single, {"type": "null"}]});
    }
    single
}

/// The schema of one value of the field (ignoring repetition).
fn scalar_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    match field.kind() {
        Kind::Double | Kind::Float => {
            // NaN and the infinities are strings in proto3 JSON.
            json!({"type": ["number", "string"]})
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "integer", "format": "int64"})
        }
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Enum(enumeration) => {
            let names: Vec<String> = enumeration
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            json!({"type": "string", "enum": names})
        }
        Kind::Message(message) => match well_known(&message) {
            Some(schema) => schema,
            None => {
                register(&message, schemas);
                reference(&message)
            }
        },
    }
}

/// The JSON form of the well-known types the contracts use.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({"type": "string"}),
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        _ => return None,
    })
}

/// Answers `GET /api-docs/openapi.json` with the document, encoded once.
pub fn document_response(document: bytes::Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document,
    )
        .into_response()
}

/// The Swagger UI page: the vendored assets (`assets/swagger-ui/`, swagger-ui-dist 5,
/// Apache-2.0) pointed at the document. Nothing is fetched from the internet.
const SWAGGER_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>crmbet API</title>
<link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/swagger-initializer.js"></script>
</body>
</html>
"#;

const SWAGGER_INITIALIZER: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({ url: "/api-docs/openapi.json", dom_id: "#swagger-ui" });
};
"##;

const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const SWAGGER_BUNDLE: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");

/// Answers `GET /api-docs` and its assets; `None` for another path.
pub fn ui_response(path: &str) -> Option<Response> {
    let (content_type, body): (&'static str, &'static [u8]) = match path {
        "/api-docs" | "/api-docs/" | "/api-docs/index.html" => {
            ("text/html; charset=utf-8", SWAGGER_PAGE.as_bytes())
        }
        "/api-docs/swagger-initializer.js" => ("text/javascript", SWAGGER_INITIALIZER.as_bytes()),
        "/api-docs/swagger-ui.css" => ("text/css", SWAGGER_CSS),
        "/api-docs/swagger-ui-bundle.js" => ("text/javascript", SWAGGER_BUNDLE),
        _ => return None,
    };
    Some((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_schemas_that_resolve() {
        let routes = RestRoutes::from_descriptor_set(crmbet_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set has routes");
        let document = openapi_document(&routes);
        let mut operations = 0;
        for route in routes.routes() {
            let method = route.http_method().as_str().to_ascii_lowercase();
            let operation = &document["paths"][route.path_template()][&method];
            assert!(operation.is_object(), "{method} {}", route.path_template());
            operations += 1;
        }
        assert!(operations >= 20, "{operations}");
        let text = document.to_string();
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling reference {name}");
        }
        let login = &document["paths"]["/api/v1/auth/login"]["post"];
        assert_eq!(login["security"], json!([]));
        let launch = &document["paths"]["/api/v1/campaigns/{campaign_id}/launch"]["post"];
        assert_eq!(launch["parameters"][0]["in"], "path");
        assert!(launch.get("security").is_none(), "bearer by default");
    }
}
