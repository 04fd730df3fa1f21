//! Logs: human-readable or JSON lines, filtered as the settings say (`RAYO_LOG`, default
//! `info`).

use actix_web::HttpMessage;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start many apps in one process) is not an error worth reporting.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
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
                let route = crate::routes::RoutePattern::of(response.request());
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
