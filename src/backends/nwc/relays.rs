//! Connections to Nostr relays for NWC, shared: one WebSocket per relay whatever the number of
//! wallets on it, kept open and made again with backoff when it drops. Subscriptions are kept
//! by the link and sent again on every new connection; what a subscription receives goes to
//! its inbox, and a lost connection is reported there, so the wallet above can react (a
//! request fails over to another relay, a notification stream ends and is reconciled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nostr::{Event, JsonUtil};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::clock::OsRandom;
use crate::domain::RelayUrl;
use crate::net::Reach;
use crate::nostr::connect::{self, Frames, RelaySocket, ANSWER_TIMEOUT, MAX_MESSAGE};
use crate::retry::Backoff;

/// A relay that sends nothing for this long (pings included) is taken for gone.
const IDLE_LIMIT: Duration = Duration::from_secs(120);
const PING_EVERY: Duration = Duration::from_secs(30);

/// What a subscription hears.
#[derive(Debug)]
pub enum Incoming {
    Event(Box<Event>),
    /// The relay has sent every stored event that matches.
    Stored,
    /// The relay ended the subscription (`CLOSED`), with its reason.
    Closed(String),
    /// The connection dropped: events may have been missed.
    Lost,
}

/// One subscription on several links, each with an inbox of its own, so that one relay's
/// flood cannot crowd out another's answer; read as one, taking from each in turn.
pub struct Inboxes {
    receivers: Vec<mpsc::Receiver<Incoming>>,
    next: usize,
}

impl Inboxes {
    /// Subscribes `id` to `filters` on every link, each with room for `depth` messages.
    pub fn subscribe(
        links: &[Arc<Link>],
        id: &str,
        filters: &[serde_json::Value],
        depth: usize,
    ) -> Self {
        let receivers = links
            .iter()
            .map(|link| {
                let (inbox, received) = mpsc::channel(depth);
                link.subscribe(id, filters, inbox);
                received
            })
            .collect();
        Self { receivers, next: 0 }
    }

    /// The next message from any link; `None` once every link has ended the subscription.
    pub async fn recv(&mut self) -> Option<Incoming> {
        std::future::poll_fn(|cx| {
            let count = self.receivers.len();
            let mut open = 0;
            for i in 0..count {
                let k = (self.next + i) % count;
                match self.receivers[k].poll_recv(cx) {
                    std::task::Poll::Ready(Some(incoming)) => {
                        self.next = (k + 1) % count;
                        return std::task::Poll::Ready(Some(incoming));
                    }
                    std::task::Poll::Ready(None) => {}
                    std::task::Poll::Pending => open += 1,
                }
            }
            if open == 0 {
                std::task::Poll::Ready(None)
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// One link per relay URL, made on first use.
pub struct RelayPool {
    reach: Reach,
    links: Mutex<HashMap<String, Arc<Link>>>,
}

impl RelayPool {
    pub fn new(reach: Reach) -> Self {
        Self {
            reach,
            links: Mutex::new(HashMap::new()),
        }
    }

    pub fn link(&self, url: &RelayUrl) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .entry(url.as_str().to_owned())
            .or_insert_with(|| Link::start(url.clone(), self.reach))
            .clone()
    }
}

struct Subscription {
    /// The `REQ` message, sent again on each new connection.
    request: String,
    /// What it asked for: an event none of them matches, or not validly signed, never
    /// reaches the inbox, so a relay cannot fill it with junk ahead of the real answer.
    filters: Vec<nostr::Filter>,
    inbox: mpsc::Sender<Incoming>,
}

impl Subscription {
    fn wants(&self, event: &Event) -> bool {
        self.filters.iter().any(|f| f.match_event(event)) && event.verify().is_ok()
    }
}

/// The subscription that carries every followed wallet's notifications on a link.
const NOTIFICATIONS: &str = "rayo-notifications";
/// NWC notification kinds (NIP-04 and NIP-44 encrypted).
const NOTIFICATION_KINDS: [u16; 2] = [23196, 23197];

/// Who follows which wallet's notifications to which connection key: one subscription per
/// link serves them all (relays cap subscriptions per connection; one per wallet would not
/// scale to a server of many users).
type Followers = HashMap<(String, String), Vec<(u64, mpsc::Sender<Incoming>)>>;

pub struct Link {
    pub url: RelayUrl,
    outgoing: mpsc::UnboundedSender<String>,
    subscriptions: Mutex<HashMap<String, Subscription>>,
    followers: Mutex<Followers>,
    next_follower: std::sync::atomic::AtomicU64,
    acks: Mutex<HashMap<String, oneshot::Sender<Result<(), String>>>>,
    /// The current connection's number, 0 while there is none.
    up: watch::Sender<u64>,
}

impl Link {
    fn start(url: RelayUrl, reach: Reach) -> Arc<Self> {
        let (outgoing, queue) = mpsc::unbounded_channel();
        let link = Arc::new(Self {
            url,
            outgoing,
            subscriptions: Mutex::new(HashMap::new()),
            followers: Mutex::new(HashMap::new()),
            next_follower: std::sync::atomic::AtomicU64::new(0),
            acks: Mutex::new(HashMap::new()),
            up: watch::channel(0).0,
        });
        let running = link.clone();
        tokio::spawn(async move { running.run(reach, queue).await });
        link
    }

    fn subscriptions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acks(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Result<(), String>>>> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `within` for the relay to be connected.
    pub async fn connected(&self, within: Duration) -> bool {
        let mut up = self.up.subscribe();
        tokio::time::timeout(within, up.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    /// Subscribes `id` to events matching `filters` (JSON objects), now and after every
    /// reconnection, until `unsubscribe`.
    pub fn subscribe(
        &self,
        id: &str,
        filters: &[serde_json::Value],
        inbox: mpsc::Sender<Incoming>,
    ) {
        let mut request = vec![serde_json::json!("REQ"), serde_json::json!(id)];
        request.extend(filters.iter().cloned());
        let request = serde_json::Value::Array(request).to_string();
        let filters = filters
            .iter()
            .filter_map(|f| nostr::Filter::from_json(f.to_string()).ok())
            .collect();
        if *self.up.borrow() > 0 {
            let _ = self.outgoing.send(request.clone());
        }
        self.subscriptions().insert(
            id.to_owned(),
            Subscription {
                request,
                filters,
                inbox,
            },
        );
    }

    pub fn unsubscribe(&self, id: &str) {
        if self.subscriptions().remove(id).is_some() && *self.up.borrow() > 0 {
            let _ = self
                .outgoing
                .send(serde_json::json!(["CLOSE", id]).to_string());
        }
    }

    fn followers(&self) -> std::sync::MutexGuard<'_, Followers> {
        self.followers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows notifications from `wallet` (hex key) to `client` (hex key) into `inbox`, until
    /// `unfollow` with the number returned.
    pub fn follow(&self, wallet: &str, client: &str, inbox: mpsc::Sender<Incoming>) -> u64 {
        let id = self
            .next_follower
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.followers()
            .entry((wallet.to_owned(), client.to_owned()))
            .or_default()
            .push((id, inbox));
        self.refresh_notifications();
        id
    }

    pub fn unfollow(&self, wallet: &str, client: &str, id: u64) {
        {
            let mut followers = self.followers();
            let key = (wallet.to_owned(), client.to_owned());
            if let Some(list) = followers.get_mut(&key) {
                list.retain(|(n, _)| *n != id);
                if list.is_empty() {
                    followers.remove(&key);
                }
            }
        }
        self.refresh_notifications();
    }

    /// Sends the notification subscription again for the followers there are now (a `REQ`
    /// with the same id replaces the last one), or closes it when there are none.
    fn refresh_notifications(&self) {
        let (wallets, clients) = {
            let followers = self.followers();
            let mut wallets: Vec<&String> = followers.keys().map(|(w, _)| w).collect();
            let mut clients: Vec<&String> = followers.keys().map(|(_, c)| c).collect();
            wallets.sort();
            wallets.dedup();
            clients.sort();
            clients.dedup();
            (
                wallets.into_iter().cloned().collect::<Vec<_>>(),
                clients.into_iter().cloned().collect::<Vec<_>>(),
            )
        };
        if wallets.is_empty() {
            self.unsubscribe(NOTIFICATIONS);
            return;
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_sub(60);
        let filter = serde_json::json!({
            "kinds": NOTIFICATION_KINDS,
            "authors": wallets,
            "#p": clients,
            "since": since,
        });
        // Its events are routed by `receive`, not through a subscription inbox.
        let (inbox, _) = mpsc::channel(1);
        self.subscribe(NOTIFICATIONS, &[filter], inbox);
    }

    /// Hands a notification to whoever follows its wallet and addressee.
    fn route_notification(&self, event: Event) {
        let wallet = event.pubkey.to_hex();
        let client = event
            .tags
            .iter()
            .find(|t| t.as_slice().first().map(String::as_str) == Some("p"))
            .and_then(|t| t.as_slice().get(1).cloned())
            .unwrap_or_default();
        if let Some(list) = self.followers().get(&(wallet, client)) {
            for (_, inbox) in list {
                let _ = inbox.try_send(Incoming::Event(Box::new(event.clone())));
            }
        }
    }

    /// Sends `event` and waits for the relay to accept it.
    pub async fn publish(&self, event: &Event) -> Result<(), String> {
        if *self.up.borrow() == 0 {
            return Err("not connected".into());
        }
        let (ack, accepted) = oneshot::channel();
        let id = event.id.to_hex();
        self.acks().insert(id.clone(), ack);
        let _ = self
            .outgoing
            .send(format!("[\"EVENT\",{}]", event.as_json()));
        let outcome = match tokio::time::timeout(ANSWER_TIMEOUT, accepted).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the connection dropped".into()),
            Err(_) => Err("no answer in time".into()),
        };
        self.acks().remove(&id);
        outcome
    }

    async fn run(self: Arc<Self>, reach: Reach, mut queue: mpsc::UnboundedReceiver<String>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut generation = 0;
        loop {
            match connect::connect(&self.url, reach, Frames::Shared).await {
                Ok(socket) => {
                    generation += 1;
                    backoff.reset();
                    tracing::debug!(relay = %self.url, "connected to an NWC relay");
                    // Whatever was queued while down is stale: requests waiting on it time out.
                    while queue.try_recv().is_ok() {}
                    let ended = self.serve(socket, &mut queue, generation).await;
                    tracing::warn!(relay = %self.url, reason = %ended, "lost the NWC relay connection");
                }
                Err(e) => {
                    tracing::warn!(relay = %self.url, error = %e, "could not reach an NWC relay")
                }
            }
            self.up.send_replace(0);
            for (_, ack) in self.acks().drain() {
                let _ = ack.send(Err("the connection dropped".into()));
            }
            for subscription in self.subscriptions().values() {
                let _ = subscription.inbox.try_send(Incoming::Lost);
            }
            for list in self.followers().values() {
                for (_, inbox) in list {
                    let _ = inbox.try_send(Incoming::Lost);
                }
            }
            tokio::time::sleep(backoff.next_delay(&OsRandom)).await;
        }
    }

    /// Runs one connection until it ends; says why.
    async fn serve(
        &self,
        socket: RelaySocket,
        queue: &mut mpsc::UnboundedReceiver<String>,
        generation: u64,
    ) -> String {
        let (mut sink, mut stream) = socket.split();
        let requests: Vec<String> = self
            .subscriptions()
            .values()
            .map(|s| s.request.clone())
            .collect();
        for request in requests {
            if let Err(e) = sink.send(Message::text(request)).await {
                return e.to_string();
            }
        }
        self.up.send_replace(generation);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                next = tokio::time::timeout(IDLE_LIMIT, stream.next()) => match next {
                    Err(_) => return "silent for too long".into(),
                    Ok(None) => return "closed".into(),
                    Ok(Some(Err(e))) => return e.to_string(),
                    Ok(Some(Ok(Message::Text(text)))) if text.len() <= MAX_MESSAGE => {
                        self.receive(text.as_str())
                    }
                    Ok(Some(Ok(Message::Text(text)))) => {
                        tracing::debug!(relay = %self.url, bytes = text.len(), "skipped a relay message too large for NWC");
                    }
                    Ok(Some(Ok(Message::Close(_)))) => return "closed by the relay".into(),
                    Ok(Some(Ok(_))) => {}
                },
                out = queue.recv() => match out {
                    Some(text) => {
                        if let Err(e) = sink.send(Message::text(text)).await {
                            return e.to_string();
                        }
                    }
                    None => return "shut down".into(),
                },
                _ = ping.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                        return e.to_string();
                    }
                }
            }
        }
    }

    fn receive(&self, text: &str) {
        let Ok(serde_json::Value::Array(parts)) = serde_json::from_str::<serde_json::Value>(text)
        else {
            return;
        };
        let word = parts.first().and_then(|v| v.as_str()).unwrap_or_default();
        let second = parts.get(1).and_then(|v| v.as_str()).unwrap_or_default();
        match word {
            "EVENT" => {
                let Some(event) = parts
                    .get(2)
                    .and_then(|raw| Event::from_json(raw.to_string()).ok())
                else {
                    return;
                };
                if second == NOTIFICATIONS {
                    self.route_notification(event);
                } else {
                    self.deliver(second, Incoming::Event(Box::new(event)));
                }
            }
            "EOSE" => self.deliver(second, Incoming::Stored),
            "CLOSED" => {
                let reason = parts.get(2).and_then(|v| v.as_str()).unwrap_or_default();
                self.deliver(second, Incoming::Closed(reason.chars().take(200).collect()));
            }
            "OK" => {
                let accepted = parts.get(2).and_then(|v| v.as_bool()) == Some(true);
                let reason = parts.get(3).and_then(|v| v.as_str()).unwrap_or_default();
                if let Some(ack) = self.acks().remove(second) {
                    let _ = ack.send(if accepted || reason.starts_with("duplicate:") {
                        Ok(())
                    } else {
                        Err(reason.chars().take(200).collect())
                    });
                }
            }
            _ => {}
        }
    }

    fn deliver(&self, subscription: &str, incoming: Incoming) {
        if let Some(s) = self.subscriptions().get(subscription) {
            if let Incoming::Event(event) = &incoming {
                if !s.wants(event) {
                    return;
                }
            }
            // A full inbox drops: its owner reconciles by lookup anyway.
            let _ = s.inbox.try_send(incoming);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wallets_on_one_relay_share_one_link_and_one_notification_subscription() {
        let pool = RelayPool::new(Reach::Anywhere);
        // Nothing listens there: the link keeps trying, which changes nothing here.
        let url = RelayUrl::parse("ws://127.0.0.1:9/").unwrap();
        let link = pool.link(&url);
        assert!(Arc::ptr_eq(&link, &pool.link(&url)));

        let (inbox, _received) = mpsc::channel(4);
        let first = link.follow(&"a".repeat(64), &"1".repeat(64), inbox.clone());
        let second = link.follow(&"b".repeat(64), &"2".repeat(64), inbox);
        assert_eq!(
            link.subscriptions().keys().collect::<Vec<_>>(),
            [NOTIFICATIONS],
            "one subscription carries every wallet's notifications"
        );
        let request = link.subscriptions()[NOTIFICATIONS].request.clone();
        assert!(request.contains(&"a".repeat(64)) && request.contains(&"b".repeat(64)));
        link.unfollow(&"a".repeat(64), &"1".repeat(64), first);
        link.unfollow(&"b".repeat(64), &"2".repeat(64), second);
        assert!(link.subscriptions().is_empty());
    }

    fn answer_event(keys: &nostr::Keys, request: &str) -> Event {
        nostr::EventBuilder::new(nostr::Kind::from(23195), "answer")
            .tags([nostr::Tag::event(
                nostr::EventId::from_hex(request).unwrap(),
            )])
            .sign_with_keys(keys)
            .unwrap()
    }

    #[tokio::test]
    async fn junk_on_a_subscription_never_crowds_out_the_real_answer() {
        let pool = RelayPool::new(Reach::Anywhere);
        let link = pool.link(&RelayUrl::parse("ws://127.0.0.1:9/").unwrap());
        let wallet = nostr::Keys::generate();
        let request = "ab".repeat(32);
        let filter = serde_json::json!({
            "kinds": [23195], "authors": [wallet.public_key().to_hex()], "#e": [request],
        });
        let mut inbox = Inboxes::subscribe(std::slice::from_ref(&link), "answer", &[filter], 16);
        let event_message = |event: &Event| format!("[\"EVENT\",\"answer\",{}]", event.as_json());

        // Another author's events, events for another request, and the wallet's own
        // event with its signature broken: 200 of each.
        let stranger = nostr::Keys::generate();
        let mut forged = serde_json::to_value(answer_event(&wallet, &request)).unwrap();
        forged["content"] = "forged".into();
        for _ in 0..200 {
            link.receive(&event_message(&answer_event(&stranger, &request)));
            link.receive(&event_message(&answer_event(&wallet, &"cd".repeat(32))));
            link.receive(&format!("[\"EVENT\",\"answer\",{forged}]"));
        }
        let real = answer_event(&wallet, &request);
        link.receive(&event_message(&real));
        match inbox.recv().await {
            Some(Incoming::Event(event)) => assert_eq!(event.id, real.id),
            other => panic!("expected the real answer first, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_link_has_its_own_inbox() {
        let pool = RelayPool::new(Reach::Anywhere);
        let flooding = pool.link(&RelayUrl::parse("ws://127.0.0.1:9/").unwrap());
        let quiet = pool.link(&RelayUrl::parse("ws://127.0.0.1:10/").unwrap());
        let filter = serde_json::json!({"kinds": [23195]});
        let mut inbox = Inboxes::subscribe(&[flooding.clone(), quiet.clone()], "s", &[filter], 4);
        let keys = nostr::Keys::generate();
        for _ in 0..50 {
            flooding.receive(&format!(
                "[\"EVENT\",\"s\",{}]",
                answer_event(&keys, &"ab".repeat(32)).as_json()
            ));
        }
        let answer = answer_event(&keys, &"cd".repeat(32));
        quiet.receive(&format!("[\"EVENT\",\"s\",{}]", answer.as_json()));
        let mut heard = Vec::new();
        for _ in 0..5 {
            if let Some(Incoming::Event(event)) = inbox.recv().await {
                heard.push(event.id);
            }
        }
        assert!(
            heard.contains(&answer.id),
            "the quiet relay's answer got through"
        );
    }

    #[tokio::test]
    async fn an_oversized_message_is_skipped_and_the_link_stays_up() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = RelayUrl::parse(&format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
        let relay = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            // The REQ, then a message far over any NWC event, then the end of stored events.
            let _req = socket.next().await;
            let huge = format!("[\"NOTICE\",\"{}\"]", "x".repeat(MAX_MESSAGE + 1));
            socket.send(Message::text(huge)).await.unwrap();
            socket.send(Message::text(r#"["EOSE","s"]"#)).await.unwrap();
            // Held open until the test ends.
            let _ = socket.next().await;
        });
        let pool = RelayPool::new(Reach::Anywhere);
        let link = pool.link(&url);
        let mut inbox = Inboxes::subscribe(
            std::slice::from_ref(&link),
            "s",
            &[serde_json::json!({})],
            4,
        );
        assert!(link.connected(Duration::from_secs(10)).await);
        let generation = *link.up.borrow();
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await,
            Ok(Some(Incoming::Stored))
        ));
        assert_eq!(*link.up.borrow(), generation, "the same connection");
        relay.abort();
    }
}
