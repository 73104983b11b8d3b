//! The dashboard: a single-page web UI at `/` over the same REST API and tokens.
//!
//! Three files (`ui/index.html`, `ui/app.js`, `ui/app.css`) are compiled into the
//! binary and served as they are: no build step, no library, nothing fetched at run
//! time. The page holds no data and no secret; it asks for a token, keeps it in the
//! tab's `sessionStorage`, and calls `/v1/…` with `Authorization: Bearer`, so a tenant
//! token in the browser sees exactly what it sees over the API (the service filters;
//! the page only hides buttons the role cannot use, via `GET /v1/whoami`).
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and
//! connections from this origin only, no inline script, no framing) and an ETag, so a
//! reload costs a 304.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::service::Service;

/// One embedded file and where it is served.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static str,
    etag: String,
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            "/",
            "text/html; charset=utf-8",
            include_str!("../ui/index.html"),
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            include_str!("../ui/app.js"),
        ),
        (
            "/ui/app.css",
            "text/css; charset=utf-8",
            include_str!("../ui/app.css"),
        ),
    ]
    .into_iter()
    .map(|(path, mime, body)| Asset {
        path,
        mime,
        body,
        etag: format!("\"{}\"", &blake3::hash(body.as_bytes()).to_hex()[..16]),
    })
    .collect()
});

/// The dashboard's routes (merged beside the API's).
pub fn routes() -> Router<Service> {
    ASSETS.iter().enumerate().fold(Router::new(), |r, (i, a)| {
        r.route(
            a.path,
            get(move |headers: HeaderMap| async move { serve(i, &headers) }),
        )
    })
}

fn serve(i: usize, headers: &HeaderMap) -> Response {
    let a = &ASSETS[i];
    // `If-None-Match` is a list of tags, weak ones (`W/"…"`) match too, `*` matches all.
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == a.etag)
        });
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.mime)], a.body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads only what is embedded: no URL of another origin, no inline
    /// script or style the CSP would block.
    #[test]
    fn assets_are_self_contained() {
        for a in ASSETS.iter() {
            assert!(
                !a.body.contains("http://") && !a.body.contains("https://"),
                "{}",
                a.path
            );
        }
        let html = ASSETS[0].body;
        assert!(!html.contains("<script>") && !html.contains("style="));
        assert!(html.contains("src=\"/ui/app.js\"") && html.contains("href=\"/ui/app.css\""));
    }
}
