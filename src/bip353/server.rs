//! rayo as the authoritative server of its BIP-353 zones (`RAYO_DNS_BIND`, UDP and TCP), on
//! hickory-server. It answers only for its zones (no recursion, REFUSED elsewhere, no zone
//! transfers), caps UDP answers at 1232 bytes (larger ones come back truncated, for TCP), and
//! limits answers per client network over UDP so it cannot be used to amplify a flood.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::zone::Zones;
use crate::clock::Clock;

/// The largest UDP answer sent, whatever the client offers (the DNS flag day 2020 size): it
/// avoids fragmentation and bounds what one spoofed query can make us send.
pub const UDP_PAYLOAD_MAX: u16 = 1232;
/// The most client networks the response-rate limit keeps count of at once.
const MAX_NETWORKS: usize = 100_000;
/// An idle TCP connection is closed after this long.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// The zones as last built; swapped whole when offers change.
#[derive(Default)]
pub struct Published(RwLock<Arc<Zones>>);

impl Published {
    pub fn get(&self) -> Arc<Zones> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, zones: Zones) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(zones);
    }
}

/// Response-rate limiting over UDP, by client network (IPv4 /24, IPv6 /56: one network, one
/// budget, however many addresses it spoofs). Beyond the budget answers are dropped, and every
/// second one is "slipped" as an empty truncated answer, so a real client behind a spoofed
/// network still gets through by retrying over TCP (RFC 8906 style RRL).
pub struct ResponseLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    over: AtomicU64,
}

/// What the limit says about one UDP question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    Slip,
    Drop,
}

impl ResponseLimit {
    pub fn new(per_second: NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            over: AtomicU64::new(0),
        }
    }

    pub fn judge(&self, ip: IpAddr) -> Verdict {
        // Spoofed sources from very many networks would grow the table without end: past
        // its bound, every UDP answer is a slip until quiet networks are forgotten, and
        // clients ask again over TCP.
        if self.limiter.len() >= MAX_NETWORKS {
            return Verdict::Slip;
        }
        if self.limiter.check_key(&network_of(ip)).is_ok() {
            return Verdict::Answer;
        }
        if self.over.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Forgets networks that have been quiet: spoofed sources cannot grow the table for long.
    pub fn forget_quiet(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[7..].fill(0);
            IpAddr::from(octets)
        }
    }
}

pub struct DnsHandler {
    published: Arc<Published>,
    limit: Arc<ResponseLimit>,
    clock: Arc<dyn Clock>,
}

impl DnsHandler {
    pub fn new(
        published: Arc<Published>,
        limit: Arc<ResponseLimit>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            published,
            limit,
            clock,
        }
    }
}

fn info(metadata: Metadata) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // Our answers, at most our size, and DNSSEC records only for who asks (DO).
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(theirs.max_payload().clamp(512, UDP_PAYLOAD_MAX));
            ours.set_dnssec_ok(theirs.flags().dnssec_ok);
            ours
        });
        let dnssec = edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        if request.protocol() == Protocol::Udp {
            match self.limit.judge(request.src().ip()) {
                Verdict::Answer => {}
                Verdict::Slip => {
                    metadata.truncation = true;
                    return send(&mut handle, builder.build_no_records(metadata), metadata).await;
                }
                Verdict::Drop => return info(metadata),
            }
        }
        if request.metadata.op_code != OpCode::Query {
            let response = builder.error_msg(&request.metadata, ResponseCode::NotImp);
            return send(&mut handle, response, metadata).await;
        }
        let [query] = request.queries.queries() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut handle, response, metadata).await;
        };
        if query.query_class() != DNSClass::IN {
            let response = builder.error_msg(&request.metadata, ResponseCode::Refused);
            return send(&mut handle, response, metadata).await;
        }
        let name = Name::from(query.name().clone());
        let zones = self.published.get();
        let answer = zones.answer(&name, query.query_type(), dnssec, self.clock.unix());
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.response_code();
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        send(&mut handle, response, metadata).await
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(sent) => sent,
        Err(e) => {
            tracing::debug!(error = %e, "could not send a DNS answer");
            info(metadata)
        }
    }
}

/// Serves `handler` on `bind` over UDP and TCP (UDP on `udp_bind` instead, a host name and
/// port, where given) until the task is dropped. Answers where UDP listens (`bind` may name
/// port 0).
pub async fn serve(
    bind: SocketAddr,
    udp_bind: Option<&str>,
    handler: DnsHandler,
) -> std::io::Result<(SocketAddr, hickory_server::Server<DnsHandler>)> {
    let udp = match udp_bind {
        Some(named) => {
            let address = tokio::net::lookup_host(named)
                .await?
                .next()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{named}: no address"),
                    )
                })?;
            tokio::net::UdpSocket::bind(address).await?
        }
        None => tokio::net::UdpSocket::bind(bind).await?,
    };
    let at = udp.local_addr()?;
    let tcp = match udp_bind {
        Some(_) => tokio::net::TcpListener::bind(bind).await?,
        None => tokio::net::TcpListener::bind(at).await?,
    };
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    Ok((at, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_network_is_limited_and_others_are_not() {
        let limit = ResponseLimit::new(NonZeroU32::new(5).unwrap());
        let flood: Vec<Verdict> = (0..40u8)
            .map(|i| limit.judge(IpAddr::from([192, 0, 2, i])))
            .collect();
        let answered = flood.iter().filter(|v| **v == Verdict::Answer).count();
        assert_eq!(
            answered, 10,
            "the burst, then nothing: spoofed neighbours share it"
        );
        assert!(flood.contains(&Verdict::Slip) && flood.contains(&Verdict::Drop));
        assert_eq!(
            limit.judge(IpAddr::from([198, 51, 100, 1])),
            Verdict::Answer
        );
    }

    #[test]
    fn spoofing_many_networks_cannot_grow_the_table_without_end() {
        let limit = ResponseLimit::new(NonZeroU32::new(5).unwrap());
        for n in 0..MAX_NETWORKS as u32 {
            let [_, a, b, c] = n.to_be_bytes();
            assert_eq!(
                limit.judge(IpAddr::from([10 + a, b, c, 1])),
                Verdict::Answer
            );
        }
        assert_eq!(limit.judge(IpAddr::from([203, 0, 113, 1])), Verdict::Slip);
    }
}
