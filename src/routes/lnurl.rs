//! The public LNURL endpoints: discovery, callback, LUD-21 verify. Every answer, including a
//! route or method that does not exist under these paths, is LNURL-shaped and CORS-open.

use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};

use std::sync::Arc;

use super::{request_host, State};
use crate::backends::Capabilities;
use crate::directory::Unpayable;
use crate::domain::{Hash32, Username};
use crate::error::LnurlError;
use crate::invoices::NewInvoice;
use crate::limits::Origin;
use crate::lnurl::{PayProfile, PayResponse, PaymentRequest, VerifyResponse};

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
    state: web::Data<State>,
) -> Result<HttpResponse, LnurlError> {
    let profile = payable(&state, &req, &name)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(profile.pay_request.clone()))
}

async fn callback(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<State>,
) -> Result<HttpResponse, LnurlError> {
    let (answer, _) = pay(&state, &req, &name, |profile, capabilities| {
        PaymentRequest::from_query(req.query_string(), profile, capabilities)
    })
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// The user behind the address a request names, if they take payments.
pub(super) fn payable(
    state: &State,
    req: &HttpRequest,
    name: &str,
) -> Result<Arc<PayProfile>, LnurlError> {
    state
        .services
        .directory
        .payable(request_host(req).as_deref(), name)
        .map_err(|refusal| match refusal {
            Unpayable::Unknown => LnurlError::new("Unknown user"),
            Unpayable::Disabled => LnurlError::new("This address is not accepting payments"),
        })
}

/// A payment to the address `name`: through the invoice rate limit first (whatever follows,
/// a zap request's signature, a backend call, a durable write, costs more than refusing),
/// then `request` checks what was asked against the payRequest, then the issuer makes the
/// invoice. The callback and the pay page's form both come here.
pub(super) async fn pay(
    state: &State,
    req: &HttpRequest,
    name: &str,
    request: impl FnOnce(&PayProfile, &Capabilities) -> Result<PaymentRequest, LnurlError>,
) -> Result<(PayResponse, Hash32), LnurlError> {
    let services = &state.services;
    let admission = services.issuer.admit(state.client(req), Origin::Payer)?;
    let profile = payable(state, req, name)?;
    let user = &profile.user;
    let (_, backend) = services.issuer.backend_for(user)?;
    let payment = request(&profile, backend.capabilities())?;
    let record = services
        .issuer
        .issue(NewInvoice {
            user,
            amount: payment.amount,
            description: payment.description,
            comment: payment.comment,
            expiry: services.settings.invoice_expiry,
            app: None,
            admission,
        })
        .await?;
    let hash = record.payment_hash;
    let public_url = services.directory.public_url_for(user);
    let verify = services.verify_key.url(public_url, &user.name, &hash);
    Ok((
        PayResponse::of(record, user.success_action.clone(), verify),
        hash,
    ))
}

/// LUD-21: whether the invoice behind a verify URL is paid. Anything wrong with the URL is
/// "Not found": the tag is the secret, and nothing says which part was wrong.
async fn verify(
    path: web::Path<(String, String, String)>,
    state: web::Data<State>,
) -> Result<HttpResponse, LnurlError> {
    let (name, hash, tag) = path.into_inner();
    let not_found = || LnurlError::new("Not found");
    let hash: Hash32 = hash.parse().map_err(|_| not_found())?;
    if !state.services.verify_key.accepts(&hash, &tag) {
        return Err(not_found());
    }
    let user = Username::from_address(&name).map_err(|_| not_found())?;
    let invoice = state
        .services
        .db
        .store()
        .invoice(&hash)?
        .filter(|invoice| invoice.user == user)
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(VerifyResponse::of(&invoice)))
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
