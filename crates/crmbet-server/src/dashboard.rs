//! The operator dashboard (`web-client/`), built by Vite and embedded at compile time
//! (`build.rs`), served on GET and HEAD of every path no other route takes: files by their
//! path, and `index.html` for the dashboard's own routes (`/segments/3`, `/players/p42`),
//! which the page resolves in the browser.
//!
//! Invariant: the dashboard never shadows the API. It is the HTTP router's fallback, so
//! `/health`, `/api/…` and every explicit route win; gRPC and grpc-web never reach the
//! HTTP router ([`crate::gateway`] dispatches them by content type); and a path whose first
//! segment holds a dot (`/crmbet.v1.ClusterService/ListClusters`, `/favicon.ico`) is a
//! file or nothing, never `index.html`.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

/// Every file of `web-client/dist/`, by URL path, sorted.
static EMBEDDED_FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

/// Hashed build outputs: their names change with their content, so browsers keep them.
const IMMUTABLE_CACHE: &str = "public, max-age=31536000, immutable";
/// `index.html` and unhashed files: always revalidated, so a new build shows at once.
const REVALIDATE_CACHE: &str = "no-cache";

/// Answers `request` from the embedded dashboard; the HTTP router's fallback.
pub(crate) async fn serve(request: Request) -> Response {
    Dashboard::EMBEDDED.answer(request.method(), request.uri().path())
}

/// A set of dashboard files and how to answer from them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dashboard {
    files: &'static [(&'static str, &'static [u8])],
}

/// What a path resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    File {
        path: &'static str,
        body: &'static [u8],
    },
    NotFound,
}

impl Dashboard {
    /// The dashboard compiled into this binary.
    const EMBEDDED: Dashboard = Dashboard {
        files: EMBEDDED_FILES,
    };

    fn file(&self, path: &str) -> Option<(&'static str, &'static [u8])> {
        self.files
            .binary_search_by(|(candidate, _)| (*candidate).cmp(path))
            .ok()
            .map(|index| self.files[index])
    }

    fn resolve(&self, path: &str) -> Resolution {
        let wanted = if path == "/" { "/index.html" } else { path };
        if let Some((path, body)) = self.file(wanted) {
            return Resolution::File { path, body };
        }
        if !is_dashboard_route(path) {
            return Resolution::NotFound;
        }
        match self.file("/index.html") {
            Some((path, body)) => Resolution::File { path, body },
            None => Resolution::NotFound,
        }
    }

    fn answer(&self, method: &Method, path: &str) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return not_found();
        }
        let Resolution::File { path, body } = self.resolve(path) else {
            return not_found();
        };
        let cache_control = if path.starts_with("/assets/") {
            IMMUTABLE_CACHE
        } else {
            REVALIDATE_CACHE
        };
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body)
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        response
    }
}

/// Paths the page routes itself: not the API, not a gRPC method, not a missing asset.
fn is_dashboard_route(path: &str) -> bool {
    let first_segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let reserved = ["api", "assets", "health", "metrics", "api-docs"];
    !first_segment.contains('.') && !reserved.contains(&first_segment)
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        r#"{"code": "NOT_FOUND", "message": "no such page or route", "details": []}"#,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &[u8] = b"<!doctype html>";
    const SCRIPT: &[u8] = b"console.log(1)";
    const FILES: &[(&str, &[u8])] = &[
        ("/assets/index-abc123.js", SCRIPT),
        ("/favicon.svg", b"<svg/>"),
        ("/index.html", INDEX),
    ];
    const DASHBOARD: Dashboard = Dashboard { files: FILES };

    #[test]
    fn resolves_files_dashboard_routes_and_nothing_else() {
        let index = Resolution::File {
            path: "/index.html",
            body: INDEX,
        };
        let cases: &[(&str, Resolution)] = &[
            ("/", index),
            ("/index.html", index),
            ("/segments/3", index),
            ("/players/p.42", index),
            (
                "/assets/index-abc123.js",
                Resolution::File {
                    path: "/assets/index-abc123.js",
                    body: SCRIPT,
                },
            ),
            ("/assets/missing-000.js", Resolution::NotFound),
            ("/missing.png", Resolution::NotFound),
            (
                "/crmbet.v1.ClusterService/ListClusters",
                Resolution::NotFound,
            ),
            ("/grpc.health.v1.Health/Check", Resolution::NotFound),
            ("/api/v1/unknown", Resolution::NotFound),
            ("/health/extra", Resolution::NotFound),
            ("/metrics", Resolution::NotFound),
        ];
        for (path, expected) in cases {
            assert_eq!(&DASHBOARD.resolve(path), expected, "path {path}");
        }
    }

    #[test]
    fn hashed_assets_are_immutable_and_pages_revalidate() {
        let asset = DASHBOARD.answer(&Method::GET, "/assets/index-abc123.js");
        assert_eq!(asset.status(), StatusCode::OK);
        assert_eq!(asset.headers()[header::CACHE_CONTROL], IMMUTABLE_CACHE);
        assert_eq!(
            asset.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let page = DASHBOARD.answer(&Method::HEAD, "/segments/1");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], REVALIDATE_CACHE);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn only_get_and_head_are_served() {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let response = DASHBOARD.answer(&method, "/");
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "method {method}");
        }
    }

    #[test]
    fn embedded_table_is_sorted_for_lookup() {
        assert!(EMBEDDED_FILES.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }
}
