//! The one place where errors become HTTP responses, and JSON responses are built.

use serde::Serialize;
use tessera_core::ApiError;
use worker::{Headers, Method, Request, Response, ResponseBuilder, Stub};

const JSON_TYPE: &str = "application/json; charset=utf-8";

/// What a handler fails with: either a domain error or a platform failure, which
/// is logged and shown to the client only as `internal`.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Self {
        Failure(ApiError::Internal(e.to_string()))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure(ApiError::Internal(format!("json: {e}")))
    }
}

pub type HttpResult<T> = Result<T, Failure>;

pub fn json<T: Serialize>(status: u16, body: &T) -> HttpResult<Response> {
    let text = serde_json::to_string(body)?;
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_header("content-type", JSON_TYPE)?
        .fixed(text.into_bytes()))
}

pub fn no_content() -> HttpResult<Response> {
    Ok(ResponseBuilder::new().with_status(204).empty())
}

/// `{"error": {"code", "message"}}` with the error's status (and `Retry-After`
/// for rate limits, `Content-Range` for unsatisfiable ranges). Internal details go to the log, never to the client.
pub fn error_response(e: &ApiError) -> Response {
    if let ApiError::Internal(detail) = e {
        worker::console_error!("internal error: {detail}");
    }
    let headers = Headers::new();
    // Setting well-formed constant header names and ASCII values cannot fail.
    let _ = headers.set("content-type", JSON_TYPE);
    if let Some(secs) = e.retry_after_secs() {
        let _ = headers.set("retry-after", &secs.to_string());
    }
    if let ApiError::RangeNotSatisfiable { size } = e {
        let _ = headers.set("content-range", &format!("bytes */{size}"));
    }
    ResponseBuilder::new()
        .with_status(e.status())
        .with_headers(headers)
        .fixed(e.body().to_string().into_bytes())
}

/// What an object's `fetch` returns for the result of serving a request:
/// the response, or the error as one.
pub fn answer(result: HttpResult<Response>) -> worker::Result<Response> {
    Ok(result.unwrap_or_else(|Failure(e)| error_response(&e)))
}

/// Calls a Durable Object at `path` (which includes any query string); `body`
/// is any JavaScript body (bytes or a stream, passed on without buffering).
pub async fn call_object(
    stub: Stub,
    method: Method,
    path: &str,
    headers: Headers,
    body: Option<wasm_bindgen::JsValue>,
) -> HttpResult<Response> {
    let req = request(
        &format!("https://object{path}"),
        method,
        &headers,
        body.as_ref(),
    )?;
    Ok(stub.fetch_with_request(req).await?)
}

/// A request for `fetch` or an object's stub. Built on `web_sys` rather than
/// worker's `RequestInit`, whose conversion serialises the Cloudflare `cf`
/// options (image resizing, minification, Polish…), none of which Tessera
/// sets: that code leaves the bundle with it.
pub fn request(
    url: &str,
    method: Method,
    headers: &Headers,
    body: Option<&wasm_bindgen::JsValue>,
) -> worker::Result<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    init.set_headers(headers.as_ref());
    if let Some(body) = body {
        init.set_body(body);
    }
    Ok(web_sys::Request::new_with_str_and_init(url, &init)?.into())
}
