//! The prices rayo uses: every source's latest quote per currency, refreshed in the background
//! off the request path, and the rate taken from them (`PricePolicy`): the median of the fresh
//! quotes within a narrow band around the median of them all, and only when enough sources
//! agree. One price source is untrusted input: alone it can neither set a rate, nor shift it
//! beyond the band, nor, by dragging a mean, switch a currency off. A quote's age runs from
//! when its source says it was true. A currency without a rate has amounts in it refused,
//! while amounts in millisatoshis are not affected.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use super::convert::Currency;
use super::sources::{Reading, Ticker};
use crate::clock::Clock;
use crate::domain::Decimal;

/// How rates are taken from quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePolicy {
    /// A quote older than this (by its source's own clock where it states one) is never used.
    pub max_age: Duration,
    /// A quote further than this from the median of all fresh quotes is left out, in parts
    /// per million.
    pub band_ppm: u128,
    /// How many agreeing sources a rate needs.
    pub min_sources: usize,
    /// Currencies the operator lets a single source price (a currency with one market), having
    /// been told that one source alone then sets the rate.
    pub single_source: Vec<&'static str>,
    /// How long after its quotes were true the last good rate still enforces a user's limits
    /// in a currency while no fresh rate can be had; then payments to that user wait for one.
    pub limits_grace: Duration,
}

impl Default for PricePolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(600),
            band_ppm: 30_000,
            min_sources: 2,
            single_source: Vec::new(),
            limits_grace: Duration::from_secs(3600),
        }
    }
}

impl PricePolicy {
    /// How many agreeing sources a rate in `code` needs.
    pub fn sources_needed(&self, code: &str) -> usize {
        if self.single_source.contains(&code) {
            1
        } else {
            self.min_sources.max(1)
        }
    }

    /// The band as the percentage people write (3, 2.5).
    pub fn band_percent(&self) -> String {
        let (whole, part) = (self.band_ppm / 10_000, self.band_ppm % 10_000);
        if part == 0 {
            return whole.to_string();
        }
        format!("{whole}.{part:04}")
            .trim_end_matches('0')
            .to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub source: &'static str,
    pub price: Decimal,
    /// When it was true: when the source says, never later than when it was read; unix
    /// seconds.
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
    #[error("fewer than {needed} price sources for {currency} agree within {band}%: amounts in it cannot be converted now")]
    Disagree {
        currency: &'static str,
        needed: usize,
        band: String,
    },
    #[error("{currency} needs {needed} fresh price sources, and only {fresh} answered: amounts in it cannot be converted now")]
    TooFew {
        currency: &'static str,
        needed: usize,
        fresh: usize,
    },
}

/// Why a user's limits in a currency cannot be enforced now: payments to them wait for a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this address is priced in {currency}, and no {currency} price can be had now ({why}): it takes payments again once there is one")]
pub struct LimitsUnenforceable {
    pub currency: String,
    /// When the last good rate was true, if there ever was one.
    pub since: Option<u64>,
    pub why: PriceError,
}

/// What `rayo prices` shows for one currency.
#[derive(Debug, Clone, Serialize)]
pub struct CurrencyReport {
    pub currency: &'static str,
    pub quotes: Vec<QuoteReport>,
    pub rate: Option<Rate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Whether one source alone may set its rate (the operator's choice).
    pub single_source: bool,
}

/// A currency the operator asked for that the configured sources can never price under the
/// policy: it is not offered.
#[derive(Debug, Clone, Serialize)]
pub struct Unmet {
    pub currency: &'static str,
    pub reason: String,
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
    unmet: Vec<Unmet>,
    sources: Vec<Ticker>,
    policy: PricePolicy,
    clock: Arc<dyn Clock>,
    /// Latest quote (or error) per currency and source.
    quotes: RwLock<Quotes>,
    /// Each currency's last good rate, for users' limits in it (see `limits_rate`).
    last_good: RwLock<BTreeMap<&'static str, Rate>>,
    /// Whether the sources were read at least once (a CLI that opens the store never reads).
    read: std::sync::atomic::AtomicBool,
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
    prices[n / 2 - 1].halfway_to(&prices[n / 2])
}

impl PriceBook {
    /// A book for `currencies`, of which those that `sources` can never price under `policy`
    /// are not offered (`unmet` says why).
    pub fn new(
        currencies: Vec<&'static Currency>,
        sources: Vec<Ticker>,
        policy: PricePolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (mut offered, mut unmet) = (Vec::new(), Vec::new());
        for currency in currencies {
            let quoting: Vec<&str> = sources
                .iter()
                .filter(|s| s.quotes(currency.code))
                .map(|s| s.name())
                .collect();
            let needed = policy.sources_needed(currency.code);
            if quoting.len() >= needed {
                offered.push(currency);
                continue;
            }
            let reason = match quoting.as_slice() {
                [] => "no configured price source quotes it".to_owned(),
                [one] => format!(
                    "only {one} quotes it, and a rate needs {needed} agreeing sources (RAYO_PRICE_SINGLE_SOURCE={} lets one source alone set it)",
                    currency.code
                ),
                some => format!(
                    "only {} quote it, and a rate needs {needed} agreeing sources",
                    some.join(", ")
                ),
            };
            unmet.push(Unmet {
                currency: currency.code,
                reason,
            });
        }
        Self {
            currencies: offered,
            unmet,
            sources,
            policy,
            clock,
            quotes: RwLock::new(BTreeMap::new()),
            last_good: RwLock::new(BTreeMap::new()),
            read: std::sync::atomic::AtomicBool::new(false),
            failures: crate::log_throttle::LogThrottle::new(Duration::from_secs(600)),
        }
    }

    /// The currencies offered (possibly none).
    pub fn currencies(&self) -> &[&'static Currency] {
        &self.currencies
    }

    /// The currencies asked for that cannot be offered, and why.
    pub fn unmet(&self) -> &[Unmet] {
        &self.unmet
    }

    pub fn policy(&self) -> &PricePolicy {
        &self.policy
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
        outcome: Result<Reading, String>,
    ) {
        let now = self.clock.unix();
        let entry = outcome.map(|reading| Quote {
            source,
            price: reading.price,
            // A source's word on how old its price is counts; one from the future does not.
            at: reading.stated_at.map_or(now, |stated| stated.min(now)),
        });
        self.quotes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((currency, source), entry);
        if let Ok(rate) = self.rate(currency) {
            self.last_good
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(rate.currency, rate);
        }
    }

    /// Whether the sources were read at least once.
    pub fn has_read(&self) -> bool {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The rate that enforces a user's limits in `code`: the current one, or, while none can
    /// be had, the last good one for `limits_grace` after its quotes were true. Past that,
    /// limits in `code` cannot be enforced, and the error says why.
    pub fn limits_rate(&self, code: &str) -> Result<Rate, LimitsUnenforceable> {
        let current = match self.rate(code) {
            Ok(rate) => return Ok(rate),
            Err(e) => e,
        };
        let now = self.clock.unix();
        let last = self.offered(code).and_then(|c| {
            self.last_good
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(c.code)
                .cloned()
        });
        match last {
            Some(rate) if now.saturating_sub(rate.at) <= self.policy.limits_grace.as_secs() => {
                Ok(rate)
            }
            last => Err(LimitsUnenforceable {
                currency: code.chars().take(12).collect(),
                since: last.map(|rate| rate.at),
                why: current,
            }),
        }
    }

    /// The fresh quotes for `currency`: those within the band around the median of them all,
    /// and the outliers. The median, unlike a mean, cannot be dragged by one source.
    fn judged(&self, currency: &'static str) -> (Vec<Quote>, Vec<Quote>) {
        let now = self.clock.unix();
        let fresh: Vec<Quote> = self
            .quotes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .range((currency, "")..)
            .take_while(|((c, _), _)| *c == currency)
            .filter_map(|(_, q)| q.as_ref().ok().cloned())
            .filter(|q| now.saturating_sub(q.at) <= self.policy.max_age.as_secs())
            .collect();
        let middle = median(fresh.iter().map(|q| q.price).collect());
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for quote in &fresh {
            let far = middle
                .and_then(|m| quote.price.distance_ppm(&m))
                .is_none_or(|d| d > self.policy.band_ppm);
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
        let needed = self.policy.sources_needed(currency.code);
        let fresh = kept.len() + dropped.len();
        if fresh == 0 {
            return Err(PriceError::Stale(
                currency.code,
                self.policy.max_age.as_secs(),
            ));
        }
        if fresh < needed {
            return Err(PriceError::TooFew {
                currency: currency.code,
                needed,
                fresh,
            });
        }
        if kept.len() < needed {
            return Err(PriceError::Disagree {
                currency: currency.code,
                needed,
                band: self.policy.band_percent(),
            });
        }
        let price = median(kept.iter().map(|q| q.price).collect()).ok_or(PriceError::Stale(
            currency.code,
            self.policy.max_age.as_secs(),
        ))?;
        Ok(Rate {
            currency: currency.code,
            price,
            sources: kept.iter().map(|q| q.source).collect(),
            at: kept.iter().map(|q| q.at).min().unwrap_or_default(),
        })
    }

    /// `minor` smallest units of `code` in millisatoshis at the current rate, rounded toward
    /// the payee, with the record of what was converted at which rate. Payers' amounts come
    /// through [`PriceBook::ask`].
    pub(super) fn convert(
        &self,
        currency: &Currency,
        minor: u64,
    ) -> Result<(crate::domain::Msat, crate::domain::FiatAmount), ConversionError> {
        let rate = self.rate(currency.code)?;
        let msat = super::convert::to_msat(minor, currency, &rate.price)?;
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
                                let note = if age > self.policy.max_age.as_secs() {
                                    Some("stale: not used".to_owned())
                                } else if dropped.contains(&quote) {
                                    Some(format!(
                                        "more than {}% from the median: not used",
                                        self.policy.band_percent()
                                    ))
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
                    single_source: self.policy.sources_needed(currency.code) == 1,
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
        self.read.store(true, std::sync::atomic::Ordering::Relaxed);
        for currency in &self.currencies {
            for quote in self.judged(currency.code).1 {
                tracing::warn!(currency = currency.code, source = quote.source, price = %quote.price, band_percent = %self.policy.band_percent(), "a price outside the band around the sources' median was left out");
            }
        }
    }

    /// Refreshes every `every` for as long as the server runs.
    pub async fn refresh_forever(self: Arc<Self>, client: reqwest::Client, every: Duration) {
        for currency in &self.unmet {
            tracing::warn!(
                currency = currency.currency,
                reason = %currency.reason,
                "a currency in RAYO_CURRENCIES is not offered"
            );
        }
        for code in &self.policy.single_source {
            tracing::warn!(
                currency = code,
                "one price source alone may set this currency's rate (RAYO_PRICE_SINGLE_SOURCE): a wrong price there is what payers pay"
            );
        }
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

    fn book_of(codes: &[&str], policy: PricePolicy, clock: Arc<Fixed>) -> PriceBook {
        PriceBook::new(
            codes.iter().map(|c| Currency::find(c).unwrap()).collect(),
            Ticker::public(),
            policy,
            clock,
        )
    }

    fn book(clock: Arc<Fixed>) -> PriceBook {
        book_of(&["USD"], PricePolicy::default(), clock)
    }

    fn price(raw: &str) -> Result<Reading, String> {
        Ok(Reading {
            price: Decimal::parse(raw).unwrap(),
            stated_at: None,
        })
    }

    #[test]
    fn the_rate_is_the_median_of_fresh_quotes_near_the_median_of_all() {
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
        assert_eq!(book.rate("USD").unwrap().price.to_string(), "100150");
        book.record("USD", "yadio", price("100300"));
        assert_eq!(book.rate("USD").unwrap().price.to_string(), "100150");
    }

    #[test]
    fn one_source_far_off_cannot_drag_the_others_out_of_the_band() {
        // Three sources, one at ten times the price: a mean of the others would have moved
        // so far that every quote was dropped. The median of all stays with the two.
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book_of(&["CLP"], PricePolicy::default(), clock);
        book.record("CLP", "buda", price("900000000"));
        book.record("CLP", "coinbase", price("90300000"));
        book.record("CLP", "yadio", price("90500000"));
        let rate = book.rate("CLP").unwrap();
        assert_eq!(rate.price.to_string(), "90400000");
        assert_eq!(rate.sources, ["coinbase", "yadio"]);
    }

    #[test]
    fn two_sources_that_disagree_by_more_than_the_band_leave_no_rate() {
        // 18,000,000 and 15,000,000 JPY both passed a 20% band: 1000 JPY was underpaid by 9%.
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book_of(&["JPY"], PricePolicy::default(), clock);
        book.record("JPY", "coinbase", price("18000000"));
        book.record("JPY", "kraken", price("15000000"));
        let refused = book.rate("JPY").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "fewer than 2 price sources for JPY agree within 3%: amounts in it cannot be converted now"
        );
        let report = &book.report()[0];
        assert!(report
            .problem
            .as_deref()
            .unwrap()
            .contains("agree within 3%"));
        assert!(report.quotes.iter().any(|q| q
            .note
            .as_deref()
            .is_some_and(|n| n.contains("more than 3% from the median"))));
        // Two that agree give their mean.
        book.record("JPY", "kraken", price("17900000"));
        assert_eq!(book.rate("JPY").unwrap().price.to_string(), "17950000");
    }

    #[test]
    fn one_source_alone_sets_no_rate_unless_the_operator_allows_it() {
        let clock = Arc::new(Fixed(1_000.into()));
        // USDC: only Buda quotes it, so it is not offered at all, and `rayo prices` says why.
        let book = book_of(&["USD", "USDC"], PricePolicy::default(), clock.clone());
        assert_eq!(book.currencies().len(), 1);
        assert_eq!(book.unmet()[0].currency, "USDC");
        assert!(book.unmet()[0].reason.contains("only buda quotes it"));
        assert!(book.unmet()[0]
            .reason
            .contains("RAYO_PRICE_SINGLE_SOURCE=USDC"));
        assert!(matches!(book.rate("USDC"), Err(PriceError::NotOffered(_))));
        // USD with one answering source: no rate, and the reason.
        book.record("USD", "kraken", price("100000"));
        assert_eq!(
            book.rate("USD"),
            Err(PriceError::TooFew {
                currency: "USD",
                needed: 2,
                fresh: 1
            })
        );

        let trusting = PricePolicy {
            single_source: vec!["USDC"],
            ..PricePolicy::default()
        };
        let book = book_of(&["USDC"], trusting, clock);
        book.record("USDC", "buda", price("100000"));
        assert_eq!(book.rate("USDC").unwrap().sources, ["buda"]);
        assert!(book.report()[0].single_source);
    }

    #[test]
    fn a_quote_is_as_old_as_its_source_says() {
        let clock = Arc::new(Fixed(10_000.into()));
        let book = book(clock.clone());
        let stated = |raw: &str, at: u64| {
            Ok(Reading {
                price: Decimal::parse(raw).unwrap(),
                stated_at: Some(at),
            })
        };
        // Read just now, but true eleven minutes ago: stale.
        book.record("USD", "kraken", stated("100000", 10_000 - 660));
        book.record("USD", "coinbase", price("100100"));
        assert!(matches!(book.rate("USD"), Err(PriceError::TooFew { .. })));
        // A timestamp from the future counts as now, not later.
        book.record("USD", "kraken", stated("100000", 99_999));
        clock
            .0
            .store(10_000 + 600, std::sync::atomic::Ordering::Relaxed);
        assert!(book.rate("USD").is_ok());
        clock
            .0
            .store(10_000 + 601, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(book.rate("USD"), Err(PriceError::Stale("USD", 600)));
    }

    #[test]
    fn stale_quotes_are_never_used() {
        let clock = Arc::new(Fixed(1_000.into()));
        let book = book(clock.clone());
        book.record("USD", "kraken", price("100000"));
        book.record("USD", "bitstamp", price("100000"));
        clock
            .0
            .store(1_000 + 601, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(book.rate("USD"), Err(PriceError::Stale("USD", 600)));
        book.record("USD", "coinbase", price("100500"));
        book.record("USD", "yadio", price("100500"));
        assert_eq!(book.rate("USD").unwrap().sources, ["coinbase", "yadio"]);
        assert!(matches!(book.rate("XYZ"), Err(PriceError::NotOffered(_))));
    }
}
