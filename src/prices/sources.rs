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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Buda,
    Kraken,
    Coinbase,
    Bitstamp,
    Yadio,
}

/// A price source and where it answers (tests point it at a fake).
#[derive(Debug, Clone)]
pub struct PriceSource {
    pub kind: SourceKind,
    pub base: Url,
}

impl PriceSource {
    pub fn new(kind: SourceKind, base: Url) -> Self {
        Self { kind, base }
    }

    /// Every source, at its public address.
    pub fn public() -> Vec<Self> {
        [
            (SourceKind::Buda, "https://www.buda.com/"),
            (SourceKind::Kraken, "https://api.kraken.com/"),
            (SourceKind::Coinbase, "https://api.coinbase.com/"),
            (SourceKind::Bitstamp, "https://www.bitstamp.net/"),
            (SourceKind::Yadio, "https://api.yadio.io/"),
        ]
        .into_iter()
        .filter_map(|(kind, base)| Url::parse(base).ok().map(|base| Self::new(kind, base)))
        .collect()
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            SourceKind::Buda => "buda",
            SourceKind::Kraken => "kraken",
            SourceKind::Coinbase => "coinbase",
            SourceKind::Bitstamp => "bitstamp",
            SourceKind::Yadio => "yadio",
        }
    }

    /// Whether this source quotes `code` against bitcoin.
    pub fn quotes(&self, code: &str) -> bool {
        let list: &[&str] = match self.kind {
            SourceKind::Buda => &["CLP", "COP", "PEN", "ARS", "USDC"],
            SourceKind::Kraken => &["USD", "EUR", "GBP", "CAD", "CHF", "JPY", "AUD"],
            SourceKind::Coinbase => &[
                "USD", "EUR", "GBP", "CAD", "CHF", "JPY", "AUD", "BRL", "MXN", "ARS", "CLP", "COP",
                "PEN",
            ],
            SourceKind::Bitstamp => &["USD", "EUR", "GBP"],
            SourceKind::Yadio => &["USD", "EUR", "ARS", "CLP", "COP", "PEN", "BRL", "MXN"],
        };
        list.contains(&code)
    }

    /// Where the price of a bitcoin in `code` is read.
    pub fn url(&self, code: &str) -> Option<Url> {
        let lower = code.to_ascii_lowercase();
        let path = match self.kind {
            SourceKind::Buda => format!("api/v2/markets/btc-{lower}/ticker"),
            SourceKind::Kraken => format!("0/public/Ticker?pair=XBT{code}"),
            SourceKind::Coinbase => format!("v2/prices/BTC-{code}/spot"),
            SourceKind::Bitstamp => format!("api/v2/ticker/btc{lower}/"),
            SourceKind::Yadio => "exrates/BTC".to_owned(),
        };
        self.base.join(&path).ok()
    }

    /// The price in `code` an answer of this source states.
    pub fn parse(&self, code: &str, body: &[u8]) -> Result<Decimal, String> {
        let json: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let price = match self.kind {
            // {"ticker": {"last_price": ["62480000.0", "CLP"], ...}}
            SourceKind::Buda => {
                let last = &json["ticker"]["last_price"];
                if last[1].as_str().map(str::to_ascii_uppercase).as_deref() != Some(code) {
                    return Err("the ticker is for another market".into());
                }
                text(&last[0])
            }
            // {"error": [], "result": {"XXBTZUSD": {"c": ["96512.30000", "0.001"], ...}}}
            SourceKind::Kraken => {
                if json["error"].as_array().is_some_and(|e| !e.is_empty()) {
                    return Err(format!("error {}", json["error"]));
                }
                let pairs = json["result"].as_object().ok_or("no result")?;
                if pairs.len() != 1 {
                    return Err("not one pair".into());
                }
                pairs.values().next().and_then(|pair| text(&pair["c"][0]))
            }
            // {"data": {"amount": "96512.37", "base": "BTC", "currency": "USD"}}
            SourceKind::Coinbase => {
                let data = &json["data"];
                if data["base"] != "BTC" || data["currency"].as_str() != Some(code) {
                    return Err("the price is for another pair".into());
                }
                text(&data["amount"])
            }
            // {"last": "96512", "timestamp": "1700000000", ...}
            SourceKind::Bitstamp => text(&json["last"]),
            // {"BTC": {"USD": 96512.37, "ARS": 98765432.1, ...}, "base": "BTC"}
            SourceKind::Yadio => {
                let number = json["BTC"][code]
                    .as_number()
                    .ok_or_else(|| format!("no {code} rate"))?;
                return Decimal::from_json_number(number)
                    .map_err(|e| e.to_string())
                    .and_then(positive);
            }
        };
        let price = price.ok_or("no price in the answer")?;
        // Some APIs write more decimals than matter (Kraken: 5); trailing zeros go first.
        let trimmed = if price.contains('.') {
            price.trim_end_matches('0').trim_end_matches('.')
        } else {
            price.as_str()
        };
        Decimal::parse(trimmed)
            .map_err(|e| e.to_string())
            .and_then(positive)
    }

    /// Asks for the price in `code`.
    pub async fn fetch(&self, client: &reqwest::Client, code: &str) -> Result<Decimal, String> {
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

    fn source(kind: SourceKind) -> PriceSource {
        PriceSource::new(kind, Url::parse("https://example.com/").unwrap())
    }

    #[test]
    fn each_source_reads_its_own_wire_format() {
        let cases: [(SourceKind, &str, &str, &str); 5] = [
            (
                SourceKind::Buda,
                "CLP",
                r#"{"ticker":{"market_id":"BTC-CLP","last_price":["62480000.0","CLP"],"min_ask":["62500000.0","CLP"],"max_bid":["62400000.0","CLP"],"volume":["12.3","BTC"],"price_variation_24h":"0.01","price_variation_7d":"0.02"}}"#,
                "62480000",
            ),
            (
                SourceKind::Kraken,
                "USD",
                r#"{"error":[],"result":{"XXBTZUSD":{"a":["96512.40000","1","1.000"],"b":["96512.30000","1","1.000"],"c":["96512.30000","0.00100000"],"v":["1","2"],"p":["1","2"],"t":[1,2],"l":["1","2"],"h":["1","2"],"o":"96000.00000"}}}"#,
                "96512.3",
            ),
            (
                SourceKind::Coinbase,
                "EUR",
                r#"{"data":{"amount":"89012.55","base":"BTC","currency":"EUR"}}"#,
                "89012.55",
            ),
            (
                SourceKind::Bitstamp,
                "GBP",
                r#"{"timestamp":"1700000000","open":"1","high":"2","low":"1","last":"76543","volume":"1","vwap":"1","bid":"76540","ask":"76550","side":"0","open_24":"1","percent_change_24":"1.2"}"#,
                "76543",
            ),
            (
                SourceKind::Yadio,
                "ARS",
                r#"{"BTC":{"USD":96512.37,"ARS":98765432.1},"base":"BTC","timestamp":1700000000000}"#,
                "98765432.1",
            ),
        ];
        for (kind, code, body, price) in cases {
            let source = source(kind);
            assert!(source.quotes(code), "{kind:?} quotes {code}");
            assert_eq!(
                source.parse(code, body.as_bytes()).unwrap().to_string(),
                price,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn garbage_html_and_wrong_pairs_are_refused() {
        for kind in [
            SourceKind::Buda,
            SourceKind::Kraken,
            SourceKind::Coinbase,
            SourceKind::Bitstamp,
            SourceKind::Yadio,
        ] {
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
                    "{kind:?}: {body}"
                );
            }
        }
        let coinbase = source(SourceKind::Coinbase);
        let other_pair = r#"{"data":{"amount":"1.0","base":"ETH","currency":"USD"}}"#;
        assert!(coinbase.parse("USD", other_pair.as_bytes()).is_err());
        let kraken = source(SourceKind::Kraken);
        let error = r#"{"error":["EQuery:Unknown asset pair"]}"#;
        assert!(kraken
            .parse("USD", error.as_bytes())
            .unwrap_err()
            .contains("Unknown asset pair"));
    }
}
