//! `/api/v1/invoices`: create, read and list a user's invoices.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::request::CreateBody;
use crate::domain::{Hash32, InvoiceRecord};
use crate::invoices::lookup::{self, Viewer};
use crate::invoices::{AppInvoiceView, Description, InvoiceQuery};
use crate::routes::errors::ApiError;
use crate::routes::{Caller, State};
use crate::services::Services;
use crate::store::StoreError;

/// An invoice as apps see it, with where to verify and pay it.
pub async fn view(services: &Services, record: &InvoiceRecord) -> AppInvoiceView {
    let mut view = AppInvoiceView::for_apps(record, services.clock.unix());
    let public_url = match services.directory.get(&record.user).await {
        Some(profile) => services.directory.public_url_for(&profile.user).clone(),
        None => services.directory.public_url().clone(),
    };
    view.more.verify_url = Some(services.verify_key.url(
        &public_url,
        &record.user,
        &record.payment_hash,
    ));
    view.more.checkout_url = Some(public_url.join(&format!("/pay/{}", record.payment_hash)));
    view
}

#[derive(Serialize)]
struct CreatedView {
    #[serde(flatten)]
    invoice: AppInvoiceView,
    /// The expiry actually used, after clamping.
    expiry_secs: u64,
}

pub async fn create(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<State>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let body = body.into_inner();
    let user = body.user(&caller)?;
    let record = services
        .payments()
        .order(&user, state.client(&req), |user| {
            let order = body.order(user, &state.api, &services.prices)?;
            Ok::<_, ApiError>(crate::payments::Order {
                amount: order.amount,
                fiat: order.fiat,
                description: Description::memo_or_description(order.memo, user),
                comment: None,
                expiry: order.expiry,
                app: Some(order.app),
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedView {
        invoice: view(services, &record).await,
        expiry_secs: record.expires_at.saturating_sub(record.created_at),
    }))
}

/// The invoice, if the caller may see it. Another user's invoice is "not found" to an app:
/// its existence is none of their business.
pub async fn find(
    caller: &Caller,
    services: &Services,
    hash: &str,
) -> Result<InvoiceRecord, ApiError> {
    let hash: Hash32 = hash
        .parse()
        .map_err(|_| ApiError::invalid("payment_hash: 64 hex digits"))?;
    let viewer = caller.own_user().map_or(Viewer::Anyone, Viewer::Owner);
    lookup::find(&services.db, &hash, viewer)
        .await?
        .ok_or_else(|| ApiError::not_found("no such invoice"))
}

pub async fn show(
    caller: Caller,
    state: web::Data<State>,
    hash: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = find(&caller, &state.services, &hash).await?;
    Ok(HttpResponse::Ok().json(view(&state.services, &record).await))
}

#[derive(Serialize)]
struct Page {
    invoices: Vec<AppInvoiceView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

pub async fn list(
    caller: Caller,
    state: web::Data<State>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let services = &state.services;
    let mut query = query.into_inner();
    match &query.user {
        Some(user) => caller.may_act_for(user)?,
        None => query.user = caller.own_user().cloned(),
    }
    let limit = query.limit().get();
    let records = query
        .run(&services.db, services.clock.unix())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::invalid("cursor: no such invoice"),
            other => other.into(),
        })?;
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|r| r.payment_hash.to_hex()))
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        invoices: futures_util::future::join_all(records.iter().map(|r| view(services, r))).await,
        next_cursor,
    }))
}
