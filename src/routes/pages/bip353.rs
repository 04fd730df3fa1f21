//! An address's BIP-353 name and offer, as the pay page and the account page show them.

use super::qr;
use crate::domain::Username;
use crate::services::Services;

/// `₿alice@example.com`, with the offer as a BIP-321 URI and its QR code.
pub struct Bip353View {
    pub address: String,
    pub uri: String,
    pub qr_svg: String,
}

impl Bip353View {
    /// The name of `user`, when their backend made an offer and their domain can carry names.
    pub async fn of(services: &Services, user: &Username) -> Option<Self> {
        let name = user.clone();
        let offer = match services
            .db
            .point(move |s| crate::offers::stored(s, &name))
            .await
        {
            Ok(offer) => offer?,
            Err(e) => {
                tracing::warn!(error = %e, "could not read an address's offer");
                return None;
            }
        };
        if !crate::bip353::can_have_names(&offer.domain) {
            return None;
        }
        let uri = offer.uri();
        Some(Self {
            address: format!("₿{}@{}", offer.user, offer.domain),
            qr_svg: qr::svg(&uri),
            uri,
        })
    }
}
