//! The prices rayo uses: every source's latest quote per currency, refreshed in the background
//! off the request path, and the rate taken from them: the median of the fresh quotes, after
//! dropping any more than 20% away from the others. A quote older than the maximum age is
//! never used: a currency without a fresh quote has no rate, and amounts in it are refused,
//! while amounts in millisatoshis are not affected.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use super::convert::Currency;
use super::sources::Ticker;
use crate::clock::Clock;
use crate::domain::Decimal;

/// A quote further than this from the median of the others is dropped, in parts per million.
const MAX_DISTANCE_PPM: u128 = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub source: &'static str,
    pub price: Decimal,
    /// When it was read, unix seconds.
    pub at: u64,
}

/// The price of one bitcoin in a currency, and what it was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub currency: &'static str,
    pub price: Decimal,
    pub sources: Vec<&'static str>,
    /// The oldest quote it was taken from, unix seconds.
    pub at: u64,
}

/// Why an amount in a currency could not become millisatoshis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error(transparent)]
    Price(#[from] PriceError),
    #[error(transparent)]
    Convert(#[from] super::ConvertError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{0} is not a currency this server offers")]
    NotOffered(String),
    #[error("no price for {0} newer than {1} s: amounts in it cannot be converted now")]
    Stale(&'static str, u64),
    #[error("the price sources for {0} disagree by more than 20%: amounts in it cannot be converted now")]
    Disagree(&'static str),
}

/// What `rayo prices` shows for one currency.
#[derive(Debug, Clone, Serialize)]
pub struct CurrencyReport {
    pub currency: &'static str,
    pub quotes: Vec<QuoteReport>,
    pub rate: Option<Rate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuoteReport {
    pub source: &'static str,
    pub price: Option<Decimal>,
    pub age_secs: Option<u64>,
    /// Why it is not used (stale, an outlier) or could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Each (currency, source)'s latest answer: a quote, or why there is none.
type Quotes = BTreeMap<(&'static str, &'static str), Result<Quote, String>>;

pub struct PriceBook {
    currencies: Vec<&'static Currency>,
    sources: Vec<Ticker>,
    max_age: Duration,
    clock: Arc<dyn Clock>,
    /// Latest quote (or error) per currency and source.
    quotes: RwLock<Quotes>,
    /// A source that stays down is logged once every ten minutes, not at every reading.
    failures: crate::log_throttle::LogThrottle,
}

fn median(mut prices: Vec<Decimal>) -> Option<Decimal> {
    prices.sort();
    let n = prices.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        return Some(prices[n / 2]);
    }
    let (a, b) = (prices[n / 2 - 1], prices[n / 2]);
    // Their mean, exact with one more digit, rounded half up when already at the limit.
    let scale = a.scale().max(b.scale());
    let sum = a.units_at(scale)? + b.units_at(scale)?;
    if scale < crate::domain::MAX_DECIMAL_SCALE {
        Some(Decimal::new(sum * 5, scale + 1))
    } else {
        Some(Decimal::new(sum.div_ceil(2), scale))
    }
}

impl PriceBook {
    pub fn new(
        currencies: Vec<&'static Currency>,
        sources: Vec<Ticker>,
        max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            currencies,
            sources,
            max_age,
            clock,
            quotes: RwLock::new(BTreeMap::new()),
            failures: crate::log_throttle::LogThrottle::new(Duration::from_secs(600)),
        }
    }

    /// The currencies offered (possibly none).
    pub fn currencies(&self) -> &[&'static Currency] {
        &self.currencies
    }

    pub fn offered(&self, code: &str) -> Option<&'static Currency> {
        self.currencies
            .iter()
            .copied()
            .find(|c| c.code.eq_ignore_ascii_case(code))
    }

    /// Records what `source` answered for `currency`.
    pub fn record(
        &self,
        currency: &'static str,
        source: &'static str,
        outcome: Result<Decimal, String>,
    ) {
        let now = self.clock.unix();
        let entry = outcome.map(|price| Quote {
            source,
            price,
            at: now,
        });
        self.quotes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((currency, source), entry);
    }

    /// The fresh quotes for `currency`, and which of them are outliers.
    fn judged(&self, currency: &'static str) -> (Vec<Quote>, Vec<Quote>) {
        let now = self.clock.unix();
        let fresh: Vec<Quote> = self
            .quotes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .range((currency, "")..)
            .take_while(|((c, _), _)| *c == currency)
            .filter_map(|(_, q)| q.as_ref().ok().cloned())
            .filter(|q| now.saturating_sub(q.at) <= self.max_age.as_secs())
            .collect();
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for quote in &fresh {
            let others: Vec<Decimal> = fresh
                .iter()
                .filter(|o| o.source != quote.source)
                .map(|o| o.price)
                .collect();
            let far = median(others)
                .and_then(|m| quote.price.distance_ppm(&m))
                .is_some_and(|d| d > MAX_DISTANCE_PPM);
            if far {
                dropped.push(quote.clone());
            } else {
                kept.push(quote.clone());
            }
        }
        (kept, dropped)
    }

    /// The rate for `code` now.
    pub fn rate(&self, code: &str) -> Result<Rate, PriceError> {
        let currency = self
            .offered(code)
            .ok_or_else(|| PriceError::NotOffered(code.chars().take(12).collect()))?;
        let (kept, dropped) = self.judged(currency.code);
        if kept.is_empty() {
            return Err(if dropped.is_empty() {
                PriceError::Stale(currency.code, self.max_age.as_secs())
            } else {
                PriceError::Disagree(currency.code)
            });
        }
        let price = median(kept.iter().map(|q| q.price).collect())
            .ok_or(PriceError::Stale(currency.code, self.max_age.as_secs()))?;
        Ok(Rate {
            currency: currency.code,
            price,
            sources: kept.iter().map(|q| q.source).collect(),
            at: kept.iter().map(|q| q.at).min().unwrap_or_default(),
        })
    }

    /// `minor` smallest units of `code` in millisatoshis at the current rate, rounded toward
    /// the payee (to a whole satoshi where the backend makes nothing finer), with the record
    /// of what was converted at which rate.
    pub fn convert(
        &self,
        code: &str,
        minor: u64,
        whole_sats: bool,
    ) -> Result<(crate::domain::Msat, crate::domain::FiatAmount), ConversionError> {
        let rate = self.rate(code)?;
        let currency = self
            .offered(code)
            .ok_or_else(|| PriceError::NotOffered(code.chars().take(12).collect()))?;
        let mut msat = super::convert::to_msat(minor, currency, &rate.price)?;
        if whole_sats && !msat.is_whole_sat() {
            msat = crate::domain::Msat::from_msat(
                msat.msat()
                    .checked_add(1000 - msat.msat() % 1000)
                    .ok_or(super::ConvertError::TooLarge)?,
            );
        }
        let fiat = crate::domain::FiatAmount {
            currency: currency.code.to_owned(),
            value: Decimal::new(u128::from(minor), currency.decimals).to_string(),
            rate: rate.price.to_string(),
            source: rate.sources.join(","),
            at: rate.at,
        };
        Ok((msat, fiat))
    }

    /// Every currency's quotes, their ages, and the rate.
    pub fn report(&self) -> Vec<CurrencyReport> {
        let now = self.clock.unix();
        self.currencies
            .iter()
            .map(|currency| {
                let (_, dropped) = self.judged(currency.code);
                let quotes = self
                    .sources
                    .iter()
                    .filter(|s| s.quotes(currency.code))
                    .map(|source| {
                        let entry = self
                            .quotes
                            .read()
                            .unwrap_or_else(|p| p.into_inner())
                            .get(&(currency.code, source.name()))
                            .cloned();
                        match entry {
                            None => QuoteReport {
                                source: source.name(),
                                price: None,
                                age_secs: None,
                                note: Some("not read yet".into()),
                            },
                            Some(Err(e)) => QuoteReport {
                                source: source.name(),
                                price: None,
                                age_secs: None,
                                note: Some(e),
                            },
                            Some(Ok(quote)) => {
                                let age = now.saturating_sub(quote.at);
                                let note = if age > self.max_age.as_secs() {
                                    Some("stale: not used".to_owned())
                                } else if dropped.contains(&quote) {
                                    Some("more than 20% away from the others: not used".to_owned())
                                } else {
                                    None
                                };
                                QuoteReport {
                                    source: source.name(),
                                    price: Some(quote.price),
                                    age_secs: Some(age),
                                    note,
                                }
                            }
                        }
                    })
                    .collect();
                let (rate, problem) = match self.rate(currency.code) {
                    Ok(rate) => (Some(rate), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                CurrencyReport {
                    currency: currency.code,
                    quotes,
                    rate,
                    problem,
                }
            })
            .collect()
    }

    /// Reads every source for every offered currency it quotes, once, all at a time.
    pub async fn refresh(&self, client: &reqwest::Client) {
        let asks = self.currencies.iter().flat_map(|currency| {
            self.sources
                .iter()
                .filter(|s| s.quotes(currency.code))
                .map(move |source| async move {
                    let outcome = source.fetch(client, currency.code).await;
                    (currency.code, source.name(), outcome)
                })
        });
        for (currency, source, outcome) in futures_util::future::join_all(asks).await {
            if let Err(e) = &outcome {
                if let Some(held_back) = self.failures.admit() {
                    tracing::warn!(currency, source, error = %e, held_back, "could not read a price (rayo prices shows every source)");
                }
            }
            self.record(currency, source, outcome);
        }
        for currency in &self.currencies {
            for quote in self.judged(currency.code).1 {
                tracing::warn!(currency = currency.code, source = quote.source, price = %quote.price, "a price more than 20% away from the other sources' was left out");
            }
        }
    }

    /// Refreshes every `every` for as long as the server runs.
    pub async fn refresh_forever(self: Arc<Self>, client: reqwest::Client, every: Duration) {
        if self.currencies.is_empty() {
            return;
        }
        loop {
            self.refresh(&client).await;
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(std::sync::atomic::AtomicU64);

    impl Clock for Fixed {
        fn now(&self) -> std::time::SystemTime {
            std::time::UNIX_EPOCH
                + Duration::from_secs(self.0.load(std::sync::atomic::Ordering::Relaxed))
        }
    }

    fn book(clock: Arc<Fixed>) -> PriceBook {
        let sources = Ticker::public();
        PriceBook::new(
            vec![Currency::find("USD").unwrap()],
            sources,
            Duration::from_secs(600),
            clock,
        )
    }

    fn price(raw: &str) -> Result<Decimal, String> {
        Ok(Decimal::parse(raw).unwrap())
    }

    #[test]
    fn the_rate_is_the_median_of_fresh_quotes_without_outliers() {
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book(clock.clone());
        book.record("USD", "kraken", price("100000"));
        book.record("USD", "coinbase", price("100200"));
        book.record("USD", "bitstamp", price("100100"));
        book.record("USD", "yadio", price("130000"));
        let rate = book.rate("usd").unwrap();
        assert_eq!(rate.price.to_string(), "100100");
        assert_eq!(rate.sources, ["bitstamp", "coinbase", "kraken"]);

        // A source that fails is left out; an even number of quotes gives their mean, exactly.
        book.record("USD", "yadio", Err("HTTP 503".into()));
        assert_eq!(book.rate("USD").unwrap().price.to_string(), "100100");
        book.record("USD", "yadio", price("100301"));
        assert_eq!(book.rate("USD").unwrap().price.to_string(), "100150.0");
        book.record("USD", "yadio", price("100300"));
        assert_eq!(book.rate("USD").unwrap().price.to_string(), "100150.0");
    }

    #[test]
    fn stale_quotes_are_never_used() {
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book(clock.clone());
        book.record("USD", "kraken", price("100000"));
        clock
            .0
            .store(1_000 + 601, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(book.rate("USD"), Err(PriceError::Stale("USD", 600)));
        book.record("USD", "coinbase", price("100500"));
        assert_eq!(book.rate("USD").unwrap().sources, ["coinbase"]);
        assert!(matches!(book.rate("XYZ"), Err(PriceError::NotOffered(_))));
    }

    #[test]
    fn two_sources_that_disagree_leave_no_rate() {
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book(clock);
        book.record("USD", "kraken", price("100000"));
        book.record("USD", "coinbase", price("150000"));
        assert_eq!(book.rate("USD"), Err(PriceError::Disagree("USD")));
        let report = &book.report()[0];
        assert!(report.problem.as_deref().unwrap().contains("disagree"));
    }
}
