//! The public LNURL endpoints: discovery, callback, LUD-21 verify. Every answer, including a
//! route or method that does not exist under these paths, is LNURL-shaped and CORS-open.

use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};

use super::request_host;
use crate::error::LnurlError;
use crate::lnurl::Payments;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/.well-known/lnurlp")
            .wrap(cors())
            .route("/{name}", web::get().to(pay_request))
            .default_service(web::to(fallback)),
    )
    .service(
        web::scope("/lnurlp")
            .wrap(cors())
            .route("/{name}/callback", web::get().to(callback))
            .route("/{name}/verify/{hash}/{tag}", web::get().to(verify))
            .default_service(web::to(fallback)),
    );
}

fn cors() -> DefaultHeaders {
    DefaultHeaders::new().add(("Access-Control-Allow-Origin", "*"))
}

async fn pay_request(
    req: HttpRequest,
    name: web::Path<String>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, LnurlError> {
    let profile = payments.profile(request_host(&req).as_deref(), &name)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(profile.pay_request.clone()))
}

async fn callback(
    req: HttpRequest,
    name: web::Path<String>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, LnurlError> {
    let client = payments.limits.client(&req);
    let answer = payments
        .callback(
            client,
            request_host(&req).as_deref(),
            &name,
            req.query_string(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

async fn verify(
    path: web::Path<(String, String, String)>,
    payments: web::Data<Payments>,
) -> Result<HttpResponse, LnurlError> {
    let (name, hash, tag) = path.into_inner();
    Ok(HttpResponse::Ok().json(payments.verify(&name, &hash, &tag)?))
}

/// Preflights get their permission; anything else under the LNURL paths is an LNURL error.
async fn fallback(req: HttpRequest) -> Result<HttpResponse, LnurlError> {
    if req.method() == Method::OPTIONS {
        return Ok(HttpResponse::NoContent()
            .insert_header(("Access-Control-Allow-Methods", "GET, OPTIONS"))
            .insert_header(("Access-Control-Allow-Headers", "*"))
            .insert_header(("Access-Control-Max-Age", "86400"))
            .finish());
    }
    Err(LnurlError::new("Not found"))
}
