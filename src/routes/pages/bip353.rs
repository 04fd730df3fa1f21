//! An address's BIP-353 name and offer, as the pay page and the account page show them. The
//! offer's QR code is an image of its own (`/@{name}/offer.svg`): a BOLT12 offer makes a dense
//! code, three times the bytes of the page around it, so pages load it only when shown.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::qr;
use crate::domain::{OfferRecord, Username};
use crate::routes::{request_host, State};
use crate::services::Services;

/// `₿alice@example.com`, with the offer as a BIP-321 URI and where its QR code is.
pub struct Bip353View {
    pub address: String,
    pub uri: String,
    pub qr_url: String,
}

/// The stored offer of `user`, when their domain can carry names.
async fn offer_of(services: &Services, user: &Username) -> Option<OfferRecord> {
    let name = user.clone();
    match services
        .db
        .point(move |s| crate::store::offer_records::stored(s, &name))
        .await
    {
        Ok(offer) => offer.filter(|o| crate::domain::can_have_names(&o.domain)),
        Err(e) => {
            tracing::warn!(error = %e, "could not read an address's offer");
            None
        }
    }
}

impl Bip353View {
    /// The name of `user`, when their backend made an offer and their domain can carry names.
    pub async fn of(services: &Services, user: &Username) -> Option<Self> {
        let offer = offer_of(services, user).await?;
        Some(Self {
            address: format!("₿{}@{}", offer.user, offer.domain),
            uri: offer.uri(),
            qr_url: format!("/@{}/offer.svg", offer.user),
        })
    }
}

/// `GET /@{name}/offer.svg`: the QR code of the address's `bitcoin:?lno=` URI. The offer is
/// public (it is in DNS); caches may keep it a while.
pub(super) async fn offer_qr(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    let services = &state.services;
    let Ok(profile) = services
        .directory
        .payable(request_host(&req).as_deref(), &name)
        .await
    else {
        return HttpResponse::NotFound().finish();
    };
    let Some(offer) = offer_of(services, &profile.user.name).await else {
        return HttpResponse::NotFound().finish();
    };
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(qr::svg(&offer.uri()))
}
