//! Where outgoing connections to places other people choose may go. Webhook URLs that apps give
//! and relays that payers name must reach public addresses only, and the check is made on the
//! address actually connected to (after resolving), so a name that resolves inside, or
//! re-resolves there between a check and a connect (DNS rebinding), cannot get past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Whether a connection may go to private addresses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public unicast addresses only.
    Public,
    /// Anywhere: for places the operator chose (and tests).
    Anywhere,
}

impl Reach {
    pub fn allows(self, ip: IpAddr) -> bool {
        self == Self::Anywhere || is_public(ip)
    }
}

/// Which webhook URLs may point at private addresses (`RAYO_WEBHOOK_ALLOW_PRIVATE`). URLs that
/// apps give through the invoice API are someone else's choice: letting them reach inside
/// would let any API key holder make rayo call the operator's internal services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrivateWebhooks {
    /// `false`: every webhook goes to public addresses only.
    #[default]
    None,
    /// `true`: users' own webhooks, set by the operator, may be private ("my app runs on the
    /// same box"); URLs from apps stay public-only.
    Operator,
    /// `all`: also the URLs apps give. Only when every API key holder is trusted as much as
    /// the operator.
    All,
}

impl std::str::FromStr for PrivateWebhooks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "no" | "0" => Ok(Self::None),
            "true" | "yes" | "1" | "operator" => Ok(Self::Operator),
            "all" => Ok(Self::All),
            other => Err(format!(
                "'{other}': use false, true (users' own webhooks) or all"
            )),
        }
    }
}

impl PrivateWebhooks {
    /// Where a webhook may go: `operator` says whether the operator set its URL.
    pub fn reach(self, operator: bool) -> Reach {
        match (self, operator) {
            (Self::All, _) | (Self::Operator, true) => Reach::Anywhere,
            _ => Reach::Public,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("{0} is not a public address")]
    Private(String),
    #[error("{0} resolves only to private addresses")]
    ResolvesPrivate(String),
    #[error("could not resolve {0}: {1}")]
    Unresolved(String, String),
    #[error("the URL has no host")]
    NoHost,
    #[error("could not connect: {0}")]
    Connect(String),
}

/// IPv4 blocks of the IANA special-purpose registry (RFC 6890 and later), multicast and the
/// reserved 240/4 (which holds the broadcast address): none is an ordinary public host.
const SPECIAL_V4: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10/8 private
    (0x6440_0000, 10), // 100.64/10 shared (carrier-grade NAT)
    (0x7f00_0000, 8),  // 127/8 loopback
    (0xa9fe_0000, 16), // 169.254/16 link-local
    (0xac10_0000, 12), // 172.16/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 documentation
    (0xc01f_c400, 24), // 192.31.196.0/24 AS112
    (0xc034_c100, 24), // 192.52.193.0/24 AMT
    (0xc058_6300, 24), // 192.88.99.0/24 deprecated 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168/16 private
    (0xc0af_3000, 24), // 192.175.48.0/24 direct delegation AS112
    (0xc612_0000, 15), // 198.18/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 documentation
    (0xcb00_7100, 24), // 203.0.113.0/24 documentation
    (0xe000_0000, 4),  // 224/4 multicast
    (0xf000_0000, 4),  // 240/4 reserved, 255.255.255.255 broadcast
];

/// IPv6 blocks inside global unicast (2000::/3) that are special all the same. Everything
/// outside 2000::/3 (::/96, 64:ff9b::/96, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8,
/// ...) is refused by being outside it; IPv4-mapped addresses are judged as IPv4.
const SPECIAL_V6: &[(u128, u32)] = &[
    (0x2001_0000 << 96, 23), // 2001::/23 IETF protocol assignments (Teredo, ORCHID, ...)
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation
    (0x2002_0000 << 96, 16), // 2002::/16 6to4
    (0x3fff_0000 << 96, 20), // 3fff::/20 documentation
];

fn in_block<T>(value: T, (base, bits): (T, u32), width: u32) -> bool
where
    T: Copy + std::ops::Shr<u32, Output = T> + PartialEq,
{
    let shift = width - bits;
    value >> shift == base >> shift
}

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let n = u32::from(ip);
    !SPECIAL_V4.iter().any(|&block| in_block(n, block, 32))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let n = u128::from(ip);
    in_block(n, (0x2000 << 112, 3), 128) && !SPECIAL_V6.iter().any(|&b| in_block(n, b, 128))
}

/// The host of `url` as something to resolve: IP literals come out of their brackets.
fn host(url: &Url) -> Result<(Host<&str>, u16), NetError> {
    let host = url.host().ok_or(NetError::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(443);
    Ok((host, port))
}

/// Why a webhook URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookUrlError {
    #[error(transparent)]
    Malformed(#[from] crate::domain::UrlError),
    #[error(transparent)]
    Private(#[from] NetError),
}

/// A webhook URL as an operator or an app gives it: the one check behind users' webhooks and
/// apps' per-invoice webhooks. Parsed, and refused when it names a private address `reach`
/// does not allow; a name is checked again on the addresses it resolves to, at each delivery.
pub fn webhook_url(raw: &str, reach: Reach) -> Result<crate::domain::WebhookUrl, WebhookUrlError> {
    let url = crate::domain::WebhookUrl::parse(raw)?;
    check_url(url.url(), reach)?;
    Ok(url)
}

/// Refuses, before anything is resolved, a URL whose host is a private IP literal or a
/// `localhost` name: the clear, early answer for a bad URL. (Names are checked again on the
/// addresses they resolve to, at connect time.)
pub fn check_url(url: &Url, reach: Reach) -> Result<(), NetError> {
    if reach == Reach::Anywhere {
        return Ok(());
    }
    match host(url)?.0 {
        Host::Ipv4(ip) if !is_public_v4(ip) => Err(NetError::Private(ip.to_string())),
        Host::Ipv6(ip) if !is_public_v6(ip) => Err(NetError::Private(ip.to_string())),
        Host::Domain(name) if is_localhost(name) => Err(NetError::Private(name.to_owned())),
        _ => Ok(()),
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The addresses `url`'s host stands for that `reach` allows; an error if there are none.
pub async fn resolve(url: &Url, reach: Reach) -> Result<Vec<SocketAddr>, NetError> {
    check_url(url, reach)?;
    let (host, port) = host(url)?;
    let found: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(ip.into(), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(ip.into(), port)],
        Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| NetError::Unresolved(name.to_owned(), e.to_string()))?
            .collect(),
    };
    allowed(found, reach, url.host_str().unwrap_or_default())
}

/// The addresses among `found` that `reach` allows; an error if none is.
fn allowed(found: Vec<SocketAddr>, reach: Reach, name: &str) -> Result<Vec<SocketAddr>, NetError> {
    if found.is_empty() {
        return Err(NetError::Unresolved(name.to_owned(), "no addresses".into()));
    }
    let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| reach.allows(a.ip())).collect();
    if allowed.is_empty() {
        return Err(NetError::ResolvesPrivate(name.to_owned()));
    }
    Ok(allowed)
}

/// reqwest's resolver for clients that may reach public addresses only: names resolve to
/// their public addresses, or fail. (IP literals never reach a resolver: `check_url` them.)
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let public = allowed(found, Reach::Public, &name)?;
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client builder for URLs others choose: public addresses only (unless `reach` says
/// otherwise), no redirects (a redirect could point anywhere), no proxy from the environment.
pub fn http_client_builder(reach: Reach) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    match reach {
        Reach::Public => builder.dns_resolver(Arc::new(PublicOnly)),
        Reach::Anywhere => builder,
    }
}

/// Connects to `url`'s host on an address `reach` allows: the very address that was checked.
pub async fn connect(url: &Url, reach: Reach) -> Result<tokio::net::TcpStream, NetError> {
    let mut last = String::from("no addresses");
    for address in resolve(url, reach).await? {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e.to_string(),
        }
    }
    Err(NetError::Connect(last))
}

/// The start of an answer's body: at most `limit` bytes are read, whatever the receiver sends.
pub async fn read_at_most(mut answer: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The innermost cause of an error: what went wrong, without the layers that carried it.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn special_purpose_ipv4_blocks_are_not_public() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "198.20.0.1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn special_purpose_ipv6_blocks_are_not_public() {
        for ip in [
            "::",
            "::1",
            "::7f00:1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn urls_with_private_literals_in_any_spelling_are_refused_early() {
        for url in [
            "http://2130706433:8080/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::ffff:7f00:1]:9/",
            "http://[::1]/",
            "https://localhost/",
            "https://a.localhost./",
            "wss://[2001:db8::1]/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(check_url(&url, Reach::Public).is_err(), "{url}");
            assert!(check_url(&url, Reach::Anywhere).is_ok(), "{url}");
        }
        assert!(check_url(&Url::parse("https://example.com/").unwrap(), Reach::Public).is_ok());
    }

    #[tokio::test]
    async fn ipv6_literals_resolve_to_themselves() {
        let url = Url::parse("ws://[::1]:7777/").unwrap();
        assert_eq!(
            resolve(&url, Reach::Anywhere).await.unwrap(),
            vec!["[::1]:7777".parse().unwrap()]
        );
        assert!(matches!(
            resolve(&url, Reach::Public).await,
            Err(NetError::Private(_))
        ));
    }

    #[test]
    fn a_name_is_reached_only_on_its_public_addresses() {
        let found = |list: &[&str]| list.iter().map(|a| a.parse().unwrap()).collect::<Vec<_>>();
        assert_eq!(
            allowed(
                found(&["127.0.0.1:80", "1.1.1.1:80"]),
                Reach::Public,
                "mixed"
            ),
            Ok(found(&["1.1.1.1:80"]))
        );
        assert_eq!(
            allowed(
                found(&["10.0.0.1:80", "[fd00::1]:80"]),
                Reach::Public,
                "inside"
            ),
            Err(NetError::ResolvesPrivate("inside".into()))
        );
        assert_eq!(
            allowed(found(&["10.0.0.1:80"]), Reach::Anywhere, "inside"),
            Ok(found(&["10.0.0.1:80"]))
        );
        assert!(allowed(Vec::new(), Reach::Anywhere, "nothing").is_err());
    }

    proptest! {
        /// Every IPv4-mapped IPv6 address is judged exactly as the IPv4 address it carries.
        #[test]
        fn mapped_addresses_are_judged_as_ipv4(n in any::<u32>()) {
            let v4 = Ipv4Addr::from(n);
            prop_assert_eq!(is_public(IpAddr::V6(v4.to_ipv6_mapped())), is_public(IpAddr::V4(v4)));
        }
    }
}
