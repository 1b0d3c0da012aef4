//! The console's static files, embedded at build time and served with long-lived caching
//! (their names carry a version, so a new build gets new names).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const HTMX: &[u8] = include_bytes!("assets/htmx-2.0.11.min.js");
const CSS: &[u8] = include_bytes!("assets/console.css");

pub async fn serve(Path(file): Path<String>) -> Response {
    let css_name = format!("console-{}.css", super::ASSET_VERSION);
    let (body, content_type) = match file.as_str() {
        "htmx-2.0.11.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        name if name == css_name => (CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
