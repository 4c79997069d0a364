//! gzip for bodies worth it, when the client accepts it.

use poem::{
    IntoResponse, Response,
    http::{HeaderValue, header},
    web::{Compress, CompressionAlgo},
};

/// Bodies smaller than this are not worth compressing.
const COMPRESS_MIN_BYTES: usize = 1024;

/// gzip when the client accepts it and the body is large enough to gain from it.
pub(super) async fn compress_if_large(
    mut response: Response,
    accept_encoding: Option<&str>,
) -> Response {
    let accepts_gzip = accept_encoding.is_some_and(|v| {
        v.split(',').any(|c| {
            let mut parts = c.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
    });
    let compressible = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.contains("json")
                || ct.starts_with("text/")
                || ct.contains("yaml")
                || ct.contains("javascript")
        });
    if !accepts_gzip || !compressible || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Ok(bytes) = response.take_body().into_bytes().await else {
        return response;
    };
    if bytes.len() < COMPRESS_MIN_BYTES {
        response.set_body(bytes);
        return response;
    }
    response.set_body(bytes);
    Compress::new(response, CompressionAlgo::GZIP).into_response()
}
