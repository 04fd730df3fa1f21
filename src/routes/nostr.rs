//! NIP-05: `GET /.well-known/nostr.json?name=alice` maps the address to the user's Nostr key.

use std::collections::BTreeMap;

use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/.well-known/nostr.json")
            .wrap(DefaultHeaders::new().add(("Access-Control-Allow-Origin", "*")))
            .route(web::get().to(nostr_json)),
    );
}

#[derive(Serialize, Default)]
struct NostrJson {
    names: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    relays: BTreeMap<String, Vec<String>>,
}

/// Unknown names, users without a key and malformed queries all get an empty `names`: a
/// client only learns what it asked about, and only if it exists.
async fn nostr_json(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let mut answer = NostrJson::default();
    let name = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value.into_owned());
    if let Some(name) = name {
        let host = super::request_host(&req);
        let profile = state
            .services
            .directory
            .payable(host.as_deref(), &name)
            .await;
        if let Ok(profile) = profile {
            if let Some(key) = &profile.user.nostr_pubkey {
                answer.names.insert(name.to_lowercase(), key.clone());
                if !profile.user.nostr_relays.is_empty() {
                    answer.relays.insert(
                        key.clone(),
                        profile
                            .user
                            .nostr_relays
                            .iter()
                            .map(|r| r.to_string())
                            .collect(),
                    );
                }
            }
        }
    }
    HttpResponse::Ok().json(answer)
}
