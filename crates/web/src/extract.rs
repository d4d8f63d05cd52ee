//! Extractors that turn every kind of bad input into a precise 4xx in our error format.

use crate::error::{render, ApiError};
use crate::middleware::{AuthOutcome, ClientIp};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_core::auth::{Principal, RequestMeta};
use palisade_core::error::code;
use palisade_core::AppError;
use serde::de::DeserializeOwned;

/// A JSON object body. Wrong content type → 415; body too large → 413; malformed JSON → 400;
/// wrong types, missing or unknown fields, or not an object → 422 — each with serde's precise
/// message.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        let value = axum::Json::<T>::from_bytes(&bytes)
            .map_err(json_rejection)?
            .0;
        // serde reads a struct from an array too (`[null, null]` as "every field absent"), which
        // the document's object schemas do not allow: every request body here is an object.
        if !starts_an_object(&bytes) {
            return Err(not_an_object());
        }
        Ok(ApiJson(value))
    }
}

/// `application/json` or `application/<something>+json`, as axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    subtype == "json" || subtype.ends_with("+json")
}

fn json_rejection(r: JsonRejection) -> Response {
    let text = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::JsonSyntaxError(_) => render(
            StatusCode::BAD_REQUEST,
            code::MALFORMED_JSON,
            strip_prefix(&text),
            None,
        ),
        JsonRejection::JsonDataError(_) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::INVALID_BODY,
            strip_prefix(&text),
            None,
        ),
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => render(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BODY_TOO_LARGE,
            "the request body is larger than the server accepts".into(),
            None,
        ),
        _ => render(r.status(), code::INVALID_BODY, text, None),
    }
}

fn unsupported_media_type() -> Response {
    render(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code::UNSUPPORTED_MEDIA_TYPE,
        "send the body as JSON with Content-Type: application/json".into(),
        None,
    )
}

/// axum prefixes serde's message with a generic sentence; keep only the useful part.
fn strip_prefix(text: &str) -> String {
    text.split_once(": ")
        .map_or(text, |(_, rest)| rest)
        .to_owned()
}

/// Path parameters; a malformed id is a 400 that says so.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| {
                render(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_PATH,
                    strip_prefix(&r.body_text()),
                    None,
                )
            })
    }
}

/// Query parameters; bad ones are a 400 that names them.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| {
                render(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_QUERY,
                    strip_prefix(&r.body_text()),
                    None,
                )
            })
    }
}

/// The authenticated principal; 401 when the request carries no valid credential, 403 when a
/// restriction of the principal (`core::auth::restriction`) does not allow the route.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Authenticated { principal, .. }) => {
                // The one gate for restricted principals (an unverified email address, …): the
                // route as the router matched it, checked against the restriction's allow-list.
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or_else(|| parts.uri.path(), |m| m.as_str());
                principal
                    .check_route(route)
                    .map_err(|e| ApiError(e).into_response())?;
                Ok(Auth(principal.clone()))
            }
            Some(AuthOutcome::Failed(f)) => Err(ApiError(f.to_error()).into_response()),
            _ => Err(ApiError(AppError::unauthenticated(
                "sign in first: send Authorization: Bearer <access token>",
            ))
            .into_response()),
        }
    }
}

/// For routes anyone may call that act on an account (a password reset, the second step of a
/// sign-in, a passkey sign-in): a credential that acts
/// for someone else — an API key (for its creator) or an impersonation — is refused, as on every
/// account-security route; no credential, or a user's own session, passes.
pub struct NotDelegated;

impl<S: Send + Sync> FromRequestParts<S> for NotDelegated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(AuthOutcome::Authenticated { principal, .. }) =
            parts.extensions.get::<AuthOutcome>()
        {
            if principal.api_key().is_some() {
                return Err(ApiError(AppError::Forbidden {
                    code: code::API_KEY_NOT_ALLOWED,
                    message: "API keys cannot be used here; this route is for people".into(),
                })
                .into_response());
            }
            if principal.impersonator.is_some() {
                return Err(ApiError(AppError::Forbidden {
                    code: code::IMPERSONATION_FORBIDDEN,
                    message: "an impersonation cannot sign in or reset passwords for the user"
                        .into(),
                })
                .into_response());
            }
        }
        Ok(NotDelegated)
    }
}

/// Where the request came from, for audit and rate limits.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(request_meta(parts)))
    }
}

pub fn request_meta(parts: &Parts) -> RequestMeta {
    RequestMeta {
        ip: parts.extensions.get::<ClientIp>().and_then(|c| c.0),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        request_id: crate::middleware::current_request_id(),
    }
}

/// The raw body of a route whose JSON body is optional (parse it with [`optional_json`]). A body
/// over the limit is `413 body_too_large` in our error format, as with [`ApiJson`], not axum's
/// plain-text answer.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|r: BytesRejection| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    render(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        code::BODY_TOO_LARGE,
                        "the request body is larger than the server accepts".into(),
                        None,
                    )
                } else {
                    render(
                        r.status(),
                        code::INVALID_BODY,
                        strip_prefix(&r.body_text()),
                        None,
                    )
                }
            })
    }
}

/// An optional JSON body (`request_body(content = Option<…>)`): [`ApiBytes`] read with
/// [`optional_json`], so absent, empty and `null` are `None`, with the answers of [`ApiJson`].
pub struct ApiOptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiOptionalJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        optional_json(&bytes).map(ApiOptionalJson)
    }
}

/// Parses an optional JSON body given as bytes (empty or `null` means absent, as the OpenAPI
/// document's `Option<…>` body says), with the same answers as [`ApiJson`].
pub fn optional_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value = serde_json::from_slice::<Option<T>>(bytes).map_err(|e| {
        if e.is_data() {
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::INVALID_BODY,
                e.to_string(),
                None,
            )
        } else {
            render(
                StatusCode::BAD_REQUEST,
                code::MALFORMED_JSON,
                e.to_string(),
                None,
            )
        }
    })?;
    if value.is_some() && !starts_an_object(bytes) {
        return Err(not_an_object());
    }
    Ok(value)
}

fn starts_an_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn not_an_object() -> Response {
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        code::INVALID_BODY,
        "the body must be a JSON object".into(),
        None,
    )
}
