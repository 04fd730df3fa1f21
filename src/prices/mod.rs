//! Amounts in the payer's and the recipient's currency: prices from public tickers
//! (`sources`), the rate taken from them and how old it may be (`book`), exact decimals
//! (`decimal`) and conversions to and from millisatoshis (`convert`, where the rounding rule
//! is stated).

pub mod book;
pub mod convert;
pub mod decimal;
pub mod sources;

pub use book::{CurrencyReport, PriceBook, PriceError, Rate};
pub use convert::{ConvertError, Currency, CURRENCIES};
pub use decimal::{Decimal, DecimalError};
pub use sources::{PriceSource, SourceKind};
