//! What every request passes through: counting and timing (by route pattern), a cap on the
//! size of request heads, and a deadline on request bodies (slow clients hold a connection and
//! a worker's attention for as long as they like unless told otherwise: request heads must
//! arrive within actix's client request timeout, bodies within the deadline set here).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use futures_util::Stream;

use super::State;
use crate::metrics::{RouteLabels, RouteOnly};

/// A request's route pattern, for metrics and logs. The hot LNURL routes are parsed by hand
/// and say theirs; for the others actix matches the path against the routing table once more
/// (a regex per `{segment}`), once per request: whoever asks first keeps the answer here.
#[derive(Clone, Debug)]
pub struct RoutePattern(pub Cow<'static, str>);

impl RoutePattern {
    /// `req`'s pattern ("unmatched" when no route took it).
    pub fn of(req: &HttpRequest) -> Cow<'static, str> {
        if let Some(known) = req.extensions().get::<RoutePattern>() {
            return known.0.clone();
        }
        let pattern: Cow<'static, str> = req
            .match_pattern()
            .map_or(Cow::Borrowed("unmatched"), Cow::Owned);
        req.extensions_mut().insert(RoutePattern(pattern.clone()));
        pattern
    }

    /// Said by a handler that routed `req` itself.
    pub fn set(req: &HttpRequest, pattern: &'static str) {
        req.extensions_mut()
            .insert(RoutePattern(Cow::Borrowed(pattern)));
    }
}

/// A method as a label without allocating: the standard ones by name, the rest as "other".
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts every request by its route pattern (never the raw path: names and hashes would make
/// unbounded label sets) and status, and times it.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let metrics = req
        .app_data::<web::Data<State>>()
        .map(|state| state.services.metrics.clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = RoutePattern::of(response.request());
        let status = response.status().as_u16();
        metrics
            .http_latency
            .get_or_create(&RouteOnly {
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        metrics
            .http_requests
            .get_or_create(&RouteLabels {
                route,
                method: Cow::Borrowed(method),
                status,
            })
            .inc();
    }
    Ok(response)
}

/// Request heads beyond this are refused (HTTP/1 parsing already stops at 128 KiB): no
/// wallet, browser or app needs more, and every byte is held while the request lives.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses requests whose headers add up to more than `MAX_HEADER_BYTES`, with 431.
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if size > MAX_HEADER_BYTES {
        let response = HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .json(serde_json::json!({"error": {"code": "too_large", "message": "request headers are too large"}}));
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Gives every request body a deadline: past it, reading the body fails (and the request with
/// it), instead of waiting on a client that trickles bytes.
pub async fn limit_body_time(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    let deadline = req
        .app_data::<web::Data<State>>()
        .map(|state| state.services.settings.request_body_timeout);
    if let (true, Some(deadline)) = (has_body, deadline) {
        let body = req.take_payload();
        let timed = Deadlined {
            body,
            deadline: Box::pin(tokio::time::sleep(deadline)),
            expired: false,
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(req).await
}

struct Deadlined {
    body: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Stream for Deadlined {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The span every request is logged under: its method, route pattern (never the path itself,
/// nor the query string: those carry payer names, emails, comments and verify tags), a request
/// id and, once answered, the status.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        // The route is known once the request was routed: recorded at the end. Nothing here
        // is computed when request spans are off (`RAYO_LOG=warn`).
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            route = tracing::field::Empty,
            request_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        if !span.is_disabled() {
            if let Some(id) = request.extensions().get::<tracing_actix_web::RequestId>() {
                span.record("request_id", tracing::field::display(id));
            }
        }
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        if span.is_disabled() {
            return;
        }
        let status = match outcome {
            Ok(response) => {
                let route = RoutePattern::of(response.request());
                span.record("route", tracing::field::display(&route));
                response.status()
            }
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
        // An access log line, at debug level.
        span.in_scope(|| tracing::debug!("answered"));
    }
}
