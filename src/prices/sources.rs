//! Where prices come from: public, unauthenticated tickers, each read in its own wire format.
//! A source quotes some currencies; each quote is the price of one bitcoin in that currency,
//! as the exact decimal the API wrote.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::domain::Decimal;

/// One request may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A ticker answer is a few hundred bytes; Yadio's table of every currency a few kilobytes.
const MAX_BODY: usize = 64 * 1024;

/// A price as an API writes it: a decimal string, or (Yadio) a JSON number.
pub enum Written {
    Text(String),
    Number(serde_json::Number),
}

/// A public ticker and its wire format.
pub trait PriceSource: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether it quotes `code` against bitcoin.
    fn quotes(&self, code: &str) -> bool;
    /// Where, under its base URL, the price of a bitcoin in `code` is read.
    fn path(&self, code: &str) -> String;
    /// The price in `code` an answer states: the middle of the best bid and ask where the
    /// API gives them (a last trade on a thin market can be anywhere), else its own price.
    fn price(&self, code: &str, answer: &Value) -> Result<Price, String>;
    /// When the answer says its price was true, unix seconds, if it says.
    fn stated_at(&self, _answer: &Value) -> Option<u64> {
        None
    }
}

/// What a source answered: one price, or a bid and an ask to take the middle of.
pub enum Price {
    One(Written),
    Mid { bid: Written, ask: Written },
}

/// A source's quote: the price, and when the source says it was true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub price: Decimal,
    pub stated_at: Option<u64>,
}

fn text(value: &Value) -> Result<Written, String> {
    value
        .as_str()
        .map(|s| Written::Text(s.to_owned()))
        .ok_or_else(|| "no price in the answer".to_owned())
}

/// The bid and ask where both are written, else the one price `last`.
fn mid_or(bid: &Value, ask: &Value, last: &Value) -> Result<Price, String> {
    match (text(bid), text(ask)) {
        (Ok(bid), Ok(ask)) => Ok(Price::Mid { bid, ask }),
        _ => text(last).map(Price::One),
    }
}

/// Buda.com's market ticker: `{"ticker": {"last_price": ["62480000.0", "CLP"], ...}}`.
pub struct Buda;

impl PriceSource for Buda {
    fn name(&self) -> &'static str {
        "buda"
    }
    fn quotes(&self, code: &str) -> bool {
        ["CLP", "COP", "PEN", "ARS", "USDC"].contains(&code)
    }
    fn path(&self, code: &str) -> String {
        format!("api/v2/markets/btc-{}/ticker", code.to_ascii_lowercase())
    }
    fn price(&self, code: &str, answer: &Value) -> Result<Price, String> {
        let ticker = &answer["ticker"];
        let last = &ticker["last_price"];
        if last[1].as_str().map(str::to_ascii_uppercase).as_deref() != Some(code) {
            return Err("the ticker is for another market".into());
        }
        mid_or(&ticker["max_bid"][0], &ticker["min_ask"][0], &last[0])
    }
}

/// Kraken's public ticker: `{"error": [], "result": {"XXBTZUSD": {"c": ["96512.30000", ...]}}}`.
pub struct Kraken;

impl PriceSource for Kraken {
    fn name(&self) -> &'static str {
        "kraken"
    }
    fn quotes(&self, code: &str) -> bool {
        ["USD", "EUR", "GBP", "CAD", "CHF", "JPY", "AUD"].contains(&code)
    }
    fn path(&self, code: &str) -> String {
        format!("0/public/Ticker?pair=XBT{code}")
    }
    fn price(&self, _code: &str, answer: &Value) -> Result<Price, String> {
        if answer["error"].as_array().is_some_and(|e| !e.is_empty()) {
            return Err(format!("error {}", answer["error"]));
        }
        let pairs = answer["result"].as_object().ok_or("no result")?;
        if pairs.len() != 1 {
            return Err("not one pair".into());
        }
        pairs
            .values()
            .next()
            .map(|pair| mid_or(&pair["b"][0], &pair["a"][0], &pair["c"][0]))
            .unwrap_or_else(|| Err("no pair".into()))
    }
}

/// Coinbase's spot price: `{"data": {"amount": "96512.37", "base": "BTC", "currency": "USD"}}`.
pub struct Coinbase;

impl PriceSource for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }
    fn quotes(&self, code: &str) -> bool {
        [
            "USD", "EUR", "GBP", "CAD", "CHF", "JPY", "AUD", "BRL", "MXN", "ARS", "CLP", "COP",
            "PEN",
        ]
        .contains(&code)
    }
    fn path(&self, code: &str) -> String {
        format!("v2/prices/BTC-{code}/spot")
    }
    fn price(&self, code: &str, answer: &Value) -> Result<Price, String> {
        let data = &answer["data"];
        if data["base"] != "BTC" || data["currency"].as_str() != Some(code) {
            return Err("the price is for another pair".into());
        }
        text(&data["amount"]).map(Price::One)
    }
}

/// Bitstamp's ticker: `{"last": "96512", "timestamp": "1700000000", ...}`.
pub struct Bitstamp;

impl PriceSource for Bitstamp {
    fn name(&self) -> &'static str {
        "bitstamp"
    }
    fn quotes(&self, code: &str) -> bool {
        ["USD", "EUR", "GBP"].contains(&code)
    }
    fn path(&self, code: &str) -> String {
        format!("api/v2/ticker/btc{}/", code.to_ascii_lowercase())
    }
    fn price(&self, _code: &str, answer: &Value) -> Result<Price, String> {
        mid_or(&answer["bid"], &answer["ask"], &answer["last"])
    }
    /// `"timestamp": "1700000000"`, seconds as a string.
    fn stated_at(&self, answer: &Value) -> Option<u64> {
        answer["timestamp"].as_str()?.parse().ok()
    }
}

/// Yadio's rates: `{"BTC": {"USD": 96512.37, "ARS": 98765432.1, ...}, "base": "BTC"}`, numbers.
pub struct Yadio;

impl PriceSource for Yadio {
    fn name(&self) -> &'static str {
        "yadio"
    }
    fn quotes(&self, code: &str) -> bool {
        ["USD", "EUR", "ARS", "CLP", "COP", "PEN", "BRL", "MXN"].contains(&code)
    }
    fn path(&self, _code: &str) -> String {
        "exrates/BTC".to_owned()
    }
    fn price(&self, code: &str, answer: &Value) -> Result<Price, String> {
        answer["BTC"][code]
            .as_number()
            .map(|n| Price::One(Written::Number(n.clone())))
            .ok_or_else(|| format!("no {code} rate"))
    }
    /// `"timestamp": 1700000000000`, milliseconds as a number.
    fn stated_at(&self, answer: &Value) -> Option<u64> {
        answer["timestamp"].as_u64().map(|ms| ms / 1000)
    }
}

/// A price source at an address (its public one, or a mirror, or a test's fake).
#[derive(Clone)]
pub struct Ticker {
    pub source: std::sync::Arc<dyn PriceSource>,
    pub base: Url,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.source.name(), self.base)
    }
}

impl Ticker {
    pub fn new(source: std::sync::Arc<dyn PriceSource>, base: Url) -> Self {
        Self { source, base }
    }

    /// Every source, at its public address.
    pub fn public() -> Vec<Self> {
        let sources: [(std::sync::Arc<dyn PriceSource>, &str); 5] = [
            (std::sync::Arc::new(Buda), "https://www.buda.com/"),
            (std::sync::Arc::new(Kraken), "https://api.kraken.com/"),
            (std::sync::Arc::new(Coinbase), "https://api.coinbase.com/"),
            (std::sync::Arc::new(Bitstamp), "https://www.bitstamp.net/"),
            (std::sync::Arc::new(Yadio), "https://api.yadio.io/"),
        ];
        sources
            .into_iter()
            .filter_map(|(source, base)| Url::parse(base).ok().map(|base| Self::new(source, base)))
            .collect()
    }

    pub fn name(&self) -> &'static str {
        self.source.name()
    }

    pub fn quotes(&self, code: &str) -> bool {
        self.source.quotes(code)
    }

    pub fn url(&self, code: &str) -> Option<Url> {
        self.base.join(&self.source.path(code)).ok()
    }

    /// The price in `code` an answer of this source states, as an exact decimal, and when
    /// the source says it was true.
    pub fn parse(&self, code: &str, body: &[u8]) -> Result<Reading, String> {
        let json: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
        let price = match self.source.price(code, &json)? {
            Price::One(price) => exact(price)?,
            Price::Mid { bid, ask } => {
                let (bid, ask) = (exact(bid)?, exact(ask)?);
                if bid > ask {
                    return Err("the best bid is above the best ask".into());
                }
                bid.halfway_to(&ask)
                    .ok_or("the bid and ask are out of range")?
            }
        };
        Ok(Reading {
            price,
            stated_at: self.source.stated_at(&json),
        })
    }

    /// Asks for the price in `code`.
    pub async fn fetch(&self, client: &reqwest::Client, code: &str) -> Result<Reading, String> {
        let url = self.url(code).ok_or("no URL")?;
        let answer = tokio::time::timeout(FETCH_TIMEOUT, async {
            let mut answer = client.get(url).send().await.map_err(|e| e.to_string())?;
            let status = answer.status();
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err("the answer is too large".to_owned());
                }
            }
            Ok(body)
        })
        .await
        .map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))??;
        self.parse(code, &answer)
    }
}

fn exact(price: Written) -> Result<Decimal, String> {
    match price {
        Written::Number(number) => Decimal::from_json_number(&number)
            .map_err(|e| e.to_string())
            .and_then(positive),
        Written::Text(price) => {
            // Some APIs write more decimals than matter (Kraken: 5); trailing zeros first.
            let trimmed = if price.contains('.') {
                price.trim_end_matches('0').trim_end_matches('.')
            } else {
                price.as_str()
            };
            Decimal::parse(trimmed)
                .map_err(|e| e.to_string())
                .and_then(positive)
        }
    }
}

fn positive(price: Decimal) -> Result<Decimal, String> {
    if price.is_zero() {
        Err("a price of zero".into())
    } else {
        Ok(price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(kind: std::sync::Arc<dyn PriceSource>) -> Ticker {
        Ticker::new(kind, Url::parse("https://example.com/").unwrap())
    }

    fn all() -> [std::sync::Arc<dyn PriceSource>; 5] {
        [
            std::sync::Arc::new(Buda),
            std::sync::Arc::new(Kraken),
            std::sync::Arc::new(Coinbase),
            std::sync::Arc::new(Bitstamp),
            std::sync::Arc::new(Yadio),
        ]
    }

    #[test]
    fn each_source_reads_its_own_wire_format() {
        let [buda, kraken, coinbase, bitstamp, yadio] = all();
        let cases: [(std::sync::Arc<dyn PriceSource>, &str, &str, &str); 5] = [
            (
                buda,
                "CLP",
                r#"{"ticker":{"market_id":"BTC-CLP","last_price":["62480000.0","CLP"],"min_ask":["62500000.0","CLP"],"max_bid":["62400000.0","CLP"],"volume":["12.3","BTC"],"price_variation_24h":"0.01","price_variation_7d":"0.02"}}"#,
                "62450000",
            ),
            (
                kraken,
                "USD",
                r#"{"error":[],"result":{"XXBTZUSD":{"a":["96512.40000","1","1.000"],"b":["96512.30000","1","1.000"],"c":["96512.30000","0.00100000"],"v":["1","2"],"p":["1","2"],"t":[1,2],"l":["1","2"],"h":["1","2"],"o":"96000.00000"}}}"#,
                "96512.35",
            ),
            (
                coinbase,
                "EUR",
                r#"{"data":{"amount":"89012.55","base":"BTC","currency":"EUR"}}"#,
                "89012.55",
            ),
            (
                bitstamp,
                "GBP",
                r#"{"timestamp":"1700000000","open":"1","high":"2","low":"1","last":"76543","volume":"1","vwap":"1","bid":"76540","ask":"76550","side":"0","open_24":"1","percent_change_24":"1.2"}"#,
                "76545",
            ),
            (
                yadio,
                "ARS",
                r#"{"BTC":{"USD":96512.37,"ARS":98765432.1},"base":"BTC","timestamp":1700000000000}"#,
                "98765432.1",
            ),
        ];
        for (kind, code, body, price) in cases {
            let source = source(kind);
            assert!(source.quotes(code), "{source:?} quotes {code}");
            assert_eq!(
                source
                    .parse(code, body.as_bytes())
                    .unwrap()
                    .price
                    .to_string(),
                price,
                "{source:?}"
            );
        }
    }

    #[test]
    fn sources_that_date_their_price_are_read_with_that_date() {
        let [_, kraken, _, bitstamp, yadio] = all();
        let bitstamp = source(bitstamp).parse(
            "USD",
            br#"{"timestamp":"1700000000","last":"76543","bid":"76540","ask":"76550"}"#,
        );
        assert_eq!(bitstamp.unwrap().stated_at, Some(1_700_000_000));
        let yadio = source(yadio).parse(
            "USD",
            br#"{"BTC":{"USD":96512.37},"base":"BTC","timestamp":1700000000123}"#,
        );
        assert_eq!(yadio.unwrap().stated_at, Some(1_700_000_000));
        let crossed = source(kraken).parse(
            "USD",
            br#"{"error":[],"result":{"XXBTZUSD":{"a":["96000.0"],"b":["97000.0"],"c":["96500.0"]}}}"#,
        );
        assert_eq!(crossed.unwrap_err(), "the best bid is above the best ask");
    }

    #[test]
    fn garbage_html_and_wrong_pairs_are_refused() {
        for kind in all() {
            let source = source(kind);
            for body in [
                "<html><body>Bad gateway</body></html>",
                "{}",
                "[]",
                r#"{"last":"-5"}"#,
                r#"{"last":"0"}"#,
            ] {
                assert!(
                    source.parse("USD", body.as_bytes()).is_err(),
                    "{source:?}: {body}"
                );
            }
        }
        let coinbase = source(std::sync::Arc::new(Coinbase));
        let other_pair = r#"{"data":{"amount":"1.0","base":"ETH","currency":"USD"}}"#;
        assert!(coinbase.parse("USD", other_pair.as_bytes()).is_err());
        let kraken = source(std::sync::Arc::new(Kraken));
        let error = r#"{"error":["EQuery:Unknown asset pair"]}"#;
        assert!(kraken
            .parse("USD", error.as_bytes())
            .unwrap_err()
            .contains("Unknown asset pair"));
    }
}
