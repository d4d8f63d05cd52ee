//! [`RequestPathAnswers`]: what the request path decides before or around a handler (the
//! middleware and the extractors), added to every operation from the shape of its route, so a
//! route added later is documented the same way without anyone having to remember. Exact rather
//! than generous; `crates/palisade/tests/it/openapi.rs` probes every route to keep it so.

use palisade_core::error::code;
use std::collections::BTreeMap;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr, Required, Response};
use utoipa::Modify;

/// Where a route sits in `crate::router`, which decides the layers a request to it goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// Under `/api/`: the API middleware (authentication, the overall rate limit, CSRF and
    /// impersonation checks) runs before the handler.
    Api,
    /// Meta's `/webhooks/…`: no API middleware; the handler owns its body and its refusals.
    MetaWebhook,
    /// Health checks and this document: no API middleware.
    Plain,
}

impl RouteKind {
    fn of(path: &str) -> Self {
        if path == "/api/v1/openapi.json" {
            RouteKind::Plain
        } else if path.starts_with("/api/") {
            RouteKind::Api
        } else if path.starts_with("/webhooks/") {
            RouteKind::MetaWebhook
        } else {
            RouteKind::Plain
        }
    }
}

/// Handlers that answer without awaiting anything, so the request timeout can never fire.
const NEVER_WAITS: &[&str] = &["/healthz", "/api/v1/openapi.json"];

/// One refusal the request path can produce, with the `code` of its error body.
struct Answer {
    status: u16,
    code: &'static str,
    why: &'static str,
}

const fn answer(status: u16, code: &'static str, why: &'static str) -> Answer {
    Answer { status, code, why }
}

/// The refusals that the layers and extractors in front of an operation can produce. Exact
/// rather than generous: a status is listed only where the path of the request can produce it
/// (e.g. a route without an `Auth` extractor never answers 401 for a bad credential, and the
/// overall rate limit only covers `/api/` routes).
fn request_path_answers(path: &str, method: &str, op: &Operation) -> Vec<Answer> {
    let kind = RouteKind::of(path);
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path_params = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query_params = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    // `security(("bearer" = []), ())` (an empty alternative) means the handler also serves
    // requests without a credential, so it does not answer 401 for a missing one.
    let requires_credential = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && !s.contains(&SecurityRequirement::default()));
    let mut out = Vec::new();
    if !NEVER_WAITS.contains(&path) {
        out.push(answer(
            408,
            code::REQUEST_TIMEOUT,
            "the request took longer than `PALISADE_REQUEST_TIMEOUT_SECS` and was abandoned",
        ));
    }
    if kind == RouteKind::Plain {
        return out;
    }
    if has_path_params {
        out.push(answer(
            400,
            code::INVALID_PATH,
            "a path parameter is malformed (e.g. an id that is not a UUID)",
        ));
    }
    if kind == RouteKind::MetaWebhook {
        return out;
    }
    out.push(answer(
        429,
        code::RATE_LIMITED,
        "over the per-minute request limit of the credential, or of the address when there is none; see `Retry-After`",
    ));
    if method != "get" {
        out.push(answer(
            403,
            code::CSRF_FAILED,
            "a cookie-authenticated request without the matching `X-CSRF-Token` header",
        ));
        out.push(answer(
            403,
            code::IMPERSONATION_READ_ONLY,
            "a change under a read-only impersonation",
        ));
    }
    if requires_credential {
        out.push(answer(
            401,
            code::UNAUTHENTICATED,
            "no credential was sent; an expired one is `token_expired`, an invalid or revoked one `invalid_token` or `invalid_api_key`",
        ));
        out.push(answer(
            403,
            code::TENANT_SUSPENDED,
            "the credential's tenant is suspended",
        ));
    }
    if has_path_params {
        out.push(answer(
            404,
            code::NOT_FOUND,
            "no such resource in your tenant (another tenant's is answered the same)",
        ));
    }
    if has_query_params {
        out.push(answer(
            400,
            code::INVALID_QUERY,
            "a query parameter is malformed, unknown, or a required one is missing",
        ));
    }
    if let Some(body) = &op.request_body {
        out.push(answer(
            400,
            code::MALFORMED_JSON,
            "the body is not valid JSON",
        ));
        out.push(answer(
            413,
            code::BODY_TOO_LARGE,
            "the body is larger than `PALISADE_MAX_BODY_BYTES`",
        ));
        out.push(answer(
            422,
            code::INVALID_BODY,
            "the JSON is not an object, or has a field of the wrong type, a missing field or an unknown field",
        ));
        if is_required(body) {
            out.push(answer(
                415,
                code::UNSUPPORTED_MEDIA_TYPE,
                "the body is not sent as `Content-Type: application/json`",
            ));
        }
    }
    out
}

/// A required body goes through `ApiJson`, which insists on the JSON content type; an optional
/// one (`request_body(content = Option<…>)`, read with `ApiOptionalJson`) is parsed whatever its
/// content type says.
fn is_required(body: &RequestBody) -> bool {
    matches!(body.required, Some(Required::True))
}

/// Adds [`request_path_answers`] to every operation, documents every error with the error
/// body, and every 429 and every 503 rendered as an error with its `Retry-After` header.
pub(super) struct RequestPathAnswers;

impl Modify for RequestPathAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("options", &mut item.options),
                ("head", &mut item.head),
                ("patch", &mut item.patch),
                ("trace", &mut item.trace),
            ];
            for (method, op) in operations {
                if let Some(op) = op.as_mut() {
                    let answers = request_path_answers(path, method, op);
                    document(op, &answers);
                }
            }
        }
    }
}

fn document(op: &mut Operation, answers: &[Answer]) {
    let mut by_status: BTreeMap<u16, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        by_status.entry(a.status).or_default().push(a);
    }
    for (status, list) in by_status {
        let entry = op
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new("")));
        let RefOr::T(response) = entry else { continue };
        for a in list {
            if response.description.contains(a.code) {
                continue;
            }
            let sentence = format!("`{}`: {}.", a.code, a.why);
            if response.description.is_empty() {
                response.description = sentence;
            } else {
                let sep = if response.description.ends_with('.') {
                    " "
                } else {
                    ". "
                };
                response.description = format!("{}{sep}{sentence}", response.description);
            }
        }
    }
    for (status, entry) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = entry else { continue };
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && response.content.is_empty() {
            response.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
        }
        let error_body = response.content.get("application/json").is_some_and(
            |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody")),
        );
        // `ApiError` sets `Retry-After` on every 429 and every 503 it renders.
        if (status == "429" || status == "503") && error_body {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(retry_after);
        }
    }
}

fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}
