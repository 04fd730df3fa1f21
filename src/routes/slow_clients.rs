//! Clients that send slowly hold a connection and a worker's attention for as long as they
//! like unless told otherwise (slow-loris). Request heads must arrive within actix's client
//! request timeout; bodies within a deadline of their own, set here.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;
use std::future::Future;

/// How long a request body may take to arrive, whole.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

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
        .app_data::<actix_web::web::Data<BodyDeadline>>()
        .map(|d| d.0);
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
