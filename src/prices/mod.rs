//! Amounts in the payer's and the recipient's currency: prices from public tickers
//! (`sources`), the rate taken from them and how old it may be (`book`), and conversions to and from millisatoshis (`convert`, where the rounding rule
//! is stated).

pub mod ask;
pub mod book;
pub mod convert;
pub mod sources;

pub use ask::{AskError, Written};
pub use book::{
    ConversionError, CurrencyReport, LimitsUnenforceable, PriceBook, PriceError, PricePolicy, Rate,
    Unmet,
};
pub use convert::{ConvertError, Currency, ValueError, CURRENCIES};
pub use sources::{Bitstamp, Buda, Coinbase, Kraken, Price, PriceSource, Reading, Ticker, Yadio};

/// The HTTP client prices are read with: no redirects, no proxy from the environment.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Each reading has its own deadline (`sources`); these only bound a stuck connection.
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("rayo/", env!("CARGO_PKG_VERSION")))
        .build()
}
