//! Abuse limits: requests per client IP on the callback and the invoice API, and a cap on each
//! user's outstanding unpaid invoices (every one of them is a record and, upstream, an open
//! invoice on someone's node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use actix_web::HttpRequest;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::Username;

/// Per-IP limits; `None` where disabled.
pub struct RateLimits {
    callback: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Trust this header for the client's address (e.g. `Fly-Client-IP`) instead of the socket.
    client_ip_header: Option<String>,
}

fn limiter(per_minute: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    // A burst of a quarter minute's worth lets a person retry at once; a script gets cut off.
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new((per_minute.get() / 4).max(1)).unwrap_or(per_minute);
    Some(RateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

impl RateLimits {
    pub fn new(
        callback_per_minute: u32,
        api_per_minute: u32,
        client_ip_header: Option<String>,
    ) -> Self {
        Self {
            callback: limiter(callback_per_minute),
            api: limiter(api_per_minute),
            client_ip_header: client_ip_header.filter(|h| !h.is_empty()),
        }
    }

    /// The client's address: the configured proxy header when one is set (and parses), else
    /// the socket's peer. Headers are never trusted unless configured.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        if let Some(header) = &self.client_ip_header {
            let forwarded = req
                .headers()
                .get(header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.peer_addr().map(|a| a.ip())
    }

    pub fn allow_callback(&self, req: &HttpRequest) -> bool {
        Self::allow(&self.callback, self.client_ip(req))
    }

    pub fn allow_api(&self, req: &HttpRequest) -> bool {
        Self::allow(&self.api, self.client_ip(req))
    }

    fn allow(limiter: &Option<DefaultKeyedRateLimiter<IpAddr>>, ip: Option<IpAddr>) -> bool {
        match (limiter, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_ok(),
            _ => true,
        }
    }

    /// Forgets addresses whose limits have refilled, so memory follows recent clients only.
    pub fn forget_idle(&self) {
        for limiter in [&self.callback, &self.api].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Unpaid invoices per user, kept in memory: counted from the store at start, raised when an
/// invoice is handed out, lowered when one is paid or expires.
pub struct PendingCounts {
    cap: u32,
    counts: Mutex<HashMap<Username, u32>>,
}

impl PendingCounts {
    /// `cap = 0`: no cap (counts are still kept).
    pub fn new(cap: u32, pending: impl IntoIterator<Item = Username>) -> Self {
        let mut counts = HashMap::new();
        for user in pending {
            *counts.entry(user).or_insert(0) += 1;
        }
        Self {
            cap,
            counts: Mutex::new(counts),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Username, u32>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `user` may get another invoice.
    pub fn has_room(&self, user: &Username) -> bool {
        self.cap == 0 || self.counts().get(user).copied().unwrap_or(0) < self.cap
    }

    pub fn opened(&self, user: &Username) {
        let mut counts = self.counts();
        match counts.get_mut(user) {
            Some(count) => *count += 1,
            None => {
                counts.insert(user.clone(), 1);
            }
        }
    }

    pub fn closed(&self, user: &Username) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_invoices_per_user() {
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let counts = PendingCounts::new(2, [alice.clone()]);
        assert!(counts.has_room(&alice));
        counts.opened(&alice);
        assert!(!counts.has_room(&alice));
        assert!(counts.has_room(&bob));
        counts.closed(&alice);
        assert!(counts.has_room(&alice));
        assert!(PendingCounts::new(0, [alice.clone(), alice.clone()]).has_room(&alice));
    }
}
