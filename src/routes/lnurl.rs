//! The public LNURL endpoints: discovery, callback, LUD-21 verify. Every answer, including a
//! route or method that does not exist under these paths, is LNURL-shaped and CORS-open.

use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{request_host, RoutePattern, State};
use crate::domain::{Hash32, Username};
use crate::invoices::lookup::{self, Viewer};
use crate::lnurl::{LnurlError, VerifyResponse};
use crate::payments::Ask;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Routed by hand under static scopes: these are the hot paths, and actix would match each
    // `{name}` with a regex (see `LnurlPath`).
    cfg.service(
        web::scope("/.well-known/lnurlp")
            .wrap(cors())
            .default_service(web::to(well_known)),
    )
    .service(
        web::scope("/lnurlp")
            .wrap(cors())
            .default_service(web::to(lnurlp)),
    );
}

/// `/.well-known/lnurlp/{name}`
async fn well_known(req: HttpRequest, state: web::Data<State>) -> Result<HttpResponse, LnurlError> {
    match LnurlPath::parse(req.path()) {
        Some(LnurlPath::PayRequest(name)) if req.method() == Method::GET => {
            RoutePattern::set(&req, "/.well-known/lnurlp/{name}");
            pay_request(&req, &name, &state).await
        }
        _ => fallback(req).await,
    }
}

/// `/lnurlp/{name}/callback` and `/lnurlp/{name}/verify/{hash}/{tag}`
async fn lnurlp(req: HttpRequest, state: web::Data<State>) -> Result<HttpResponse, LnurlError> {
    if req.method() != Method::GET {
        return fallback(req).await;
    }
    match LnurlPath::parse(req.path()) {
        Some(LnurlPath::Callback(name)) => {
            RoutePattern::set(&req, "/lnurlp/{name}/callback");
            callback(&req, &name, &state).await
        }
        Some(LnurlPath::Verify { name, hash, tag }) => {
            RoutePattern::set(&req, "/lnurlp/{name}/verify/{hash}/{tag}");
            verify(&name, &hash, &tag, &state).await
        }
        _ => fallback(req).await,
    }
}

/// The LNURL paths, each dynamic segment percent-decoded (wallets encode `+` in
/// `alice+tips`); anything else (empty, extra or undecodable segments) is no LNURL path.
#[derive(Debug, PartialEq, Eq)]
enum LnurlPath {
    PayRequest(String),
    Callback(String),
    Verify {
        name: String,
        hash: String,
        tag: String,
    },
}

impl LnurlPath {
    fn parse(path: &str) -> Option<Self> {
        let (scope, rest) = if let Some(rest) = path.strip_prefix("/.well-known/lnurlp/") {
            (true, rest)
        } else {
            (false, path.strip_prefix("/lnurlp/")?)
        };
        let mut segments = rest.split('/');
        let name = segment(segments.next()?)?;
        let shape = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        );
        if segments.next().is_some() {
            return None;
        }
        match (scope, shape) {
            (true, (None, ..)) => Some(Self::PayRequest(name)),
            (false, (Some("callback"), None, ..)) => Some(Self::Callback(name)),
            (false, (Some("verify"), Some(hash), Some(tag), None)) => Some(Self::Verify {
                name,
                hash: segment(hash)?,
                tag: segment(tag)?,
            }),
            _ => None,
        }
    }
}

fn segment(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

fn cors() -> DefaultHeaders {
    DefaultHeaders::new().add(("Access-Control-Allow-Origin", "*"))
}

async fn pay_request(
    req: &HttpRequest,
    name: &str,
    state: &State,
) -> Result<HttpResponse, LnurlError> {
    let profile = state
        .services
        .payments()
        .payable(request_host(req).as_deref(), name)
        .await?;
    let prices = &state.services.prices;
    if prices.currencies().is_empty() && profile.user.currency.is_none() {
        // The common case: the payRequest as built once, served as is.
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(profile.pay_request.clone()));
    }
    let mut body: serde_json::Value = serde_json::from_slice(profile.pay_request.as_ref())
        .map_err(|_| LnurlError::new("Unknown user"))?;
    let range = crate::lnurl::Sendable::of(&profile.user, prices);
    body["minSendable"] = range.min.msat().into();
    body["maxSendable"] = range.max.msat().into();
    body["currencies"] = crate::lnurl::currencies(&profile.user, prices, range);
    Ok(HttpResponse::Ok().json(body))
}

async fn callback(
    req: &HttpRequest,
    name: &str,
    state: &State,
) -> Result<HttpResponse, LnurlError> {
    let paid = state
        .services
        .payments()
        .pay(
            request_host(req).as_deref(),
            name,
            state.client(req),
            Ask::Callback(req.query_string()),
        )
        .await?;
    Ok(HttpResponse::Ok().json(paid.response))
}

/// LUD-21: whether the invoice behind a verify URL is paid. Anything wrong with the URL is
/// "Not found": the tag is the secret, and nothing says which part was wrong.
async fn verify(
    name: &str,
    hash: &str,
    tag: &str,
    state: &State,
) -> Result<HttpResponse, LnurlError> {
    let not_found = || LnurlError::new("Not found");
    let hash: Hash32 = hash.parse().map_err(|_| not_found())?;
    if !state.services.verify_key.accepts(&hash, tag) {
        return Err(not_found());
    }
    let user = Username::from_address(name).map_err(|_| not_found())?;
    let invoice = lookup::find(&state.services.db, &hash, Viewer::Owner(&user))
        .await?
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

#[cfg(test)]
mod tests {
    use super::LnurlPath;
    use proptest::prelude::*;

    fn parsed(path: &str) -> Option<LnurlPath> {
        LnurlPath::parse(path)
    }

    #[test]
    fn the_three_lnurl_paths_are_recognised_with_their_segments_decoded() {
        assert_eq!(
            parsed("/.well-known/lnurlp/alice"),
            Some(LnurlPath::PayRequest("alice".into()))
        );
        assert_eq!(
            parsed("/.well-known/lnurlp/alice%2Btips"),
            Some(LnurlPath::PayRequest("alice+tips".into()))
        );
        assert_eq!(
            parsed("/lnurlp/alice/callback"),
            Some(LnurlPath::Callback("alice".into()))
        );
        assert_eq!(
            parsed("/lnurlp/alice/verify/ab12/tag"),
            Some(LnurlPath::Verify {
                name: "alice".into(),
                hash: "ab12".into(),
                tag: "tag".into()
            })
        );
    }

    #[test]
    fn anything_near_them_is_no_lnurl_path() {
        for path in [
            "/.well-known/lnurlp/",
            "/.well-known/lnurlp/alice/",
            "/.well-known/lnurlp/alice/callback",
            "/.well-known/lnurlp//",
            "/lnurlp/alice",
            "/lnurlp//callback",
            "/lnurlp/alice/callback/",
            "/lnurlp/alice/callback/more",
            "/lnurlp/alice/verify/ab12",
            "/lnurlp/alice/verify/ab12/tag/",
            "/lnurlp/alice/verify//tag",
            "/lnurlp/alice/pay",
            "/lnurlp/%FF%FE/callback",
            "/lnurlpx/alice/callback",
            "/other",
        ] {
            assert_eq!(parsed(path), None, "{path}");
        }
    }

    proptest! {
        #[test]
        fn any_path_parses_or_not_without_panicking(path in "\\PC{0,80}") {
            let _ = parsed(&path);
            let _ = parsed(&format!("/lnurlp/{path}"));
            let _ = parsed(&format!("/.well-known/lnurlp/{path}"));
        }

        #[test]
        fn any_name_round_trips_through_its_percent_encoding(name in "\\PC{1,40}") {
            let encoded = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
            prop_assert_eq!(
                parsed(&format!("/lnurlp/{encoded}/callback")),
                Some(LnurlPath::Callback(name.clone()))
            );
        }
    }
}
