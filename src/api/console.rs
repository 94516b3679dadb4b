//! The web console: `GET /` and its two assets, built from `console/` into
//! `console/dist/` (committed, so a cargo build needs no Node) and embedded in the
//! binary. The assets hold no data and are served without the token; every request
//! the console makes for data goes through the token check.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../console/dist/index.html");
const APP_JS: &str = include_str!("../../console/dist/app.js");
const APP_CSS: &str = include_str!("../../console/dist/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated on each load, so a new pipe binary never serves a stale page.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

pub(super) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
