//! Abuse limits: requests per client on the routes that make invoices and on the invoice API,
//! and caps on the unpaid invoices a user (and any one client of theirs) may have outstanding
//! (every one of them is a record and, upstream, an open invoice on someone's node).

mod pending;

pub use pending::{PendingCounts, PendingRefusal, Reservation};

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Who a request comes from, as limits count clients: an IPv4 address, or an IPv6 /64 (one
/// subscriber's whole prefix: counting single IPv6 addresses would give anyone billions of
/// budgets). IPv4-mapped IPv6 addresses count as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Who asks for an invoice, as the caps see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A payer: a wallet's callback, or the pay page's form. One of many: no payer may hold
    /// more than a share of a user's unpaid invoices.
    Payer,
    /// The user's own app (an API key) or the operator, acting for the user.
    Owner,
}

/// Proof that the invoice rate limit let a request through. It can only be had from
/// `RateLimits::admit_invoice`, and making an invoice takes one: no route can forget the limit.
#[derive(Debug)]
pub struct Admission {
    client: Option<ClientKey>,
    origin: Origin,
}

impl Admission {
    pub fn client(&self) -> Option<ClientKey> {
        self.client
    }

    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// For tests of what lies behind the limit.
    #[cfg(test)]
    pub fn for_tests(client: Option<ClientKey>, origin: Origin) -> Self {
        Self { client, origin }
    }
}

impl ClientKey {
    /// The bytes that identify this client (for keyed tags).
    pub fn bytes(&self) -> Vec<u8> {
        match self.0 {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        }
    }
}

/// Per-client limits; `None` where disabled. Which client a request comes from is the
/// routes' to say (see `routes::State::client`).
pub struct RateLimits {
    callback: Option<DefaultKeyedRateLimiter<ClientKey>>,
    api: Option<DefaultKeyedRateLimiter<ClientKey>>,
}

fn limiter(per_minute: u32) -> Option<DefaultKeyedRateLimiter<ClientKey>> {
    // A burst of a quarter minute's worth lets a person retry at once; a script gets cut off.
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new((per_minute.get() / 4).max(1)).unwrap_or(per_minute);
    Some(RateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

impl RateLimits {
    pub fn new(callback_per_minute: u32, api_per_minute: u32) -> Self {
        Self {
            callback: limiter(callback_per_minute),
            api: limiter(api_per_minute),
        }
    }

    /// Lets a request for an invoice through, if its client is within the invoice rate. Every
    /// route that makes an invoice needs the `Admission` this returns.
    pub fn admit_invoice(&self, client: Option<ClientKey>, origin: Origin) -> Option<Admission> {
        Self::allow(&self.callback, client).then_some(Admission { client, origin })
    }

    /// Whether `client` is within the API's request rate (which backend webhooks share).
    pub fn allow_api(&self, client: Option<ClientKey>) -> bool {
        Self::allow(&self.api, client)
    }

    fn allow(
        limiter: &Option<DefaultKeyedRateLimiter<ClientKey>>,
        client: Option<ClientKey>,
    ) -> bool {
        match (limiter, client) {
            (Some(limiter), Some(client)) => limiter.check_key(&client).is_ok(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_slash_64s() {
        let key = |ip: &str| ClientKey::of(ip.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.7"));
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
    }
}
