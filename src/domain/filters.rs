//! What listings of invoices and events can be narrowed by, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Delivery, InvoiceStatus};

/// An invoice's status as a word: `pending`, `paid` or `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum StatusName {
    Pending,
    Paid,
    Expired,
}

impl StatusName {
    pub fn of(status: &InvoiceStatus) -> Self {
        match status {
            InvoiceStatus::Pending => Self::Pending,
            InvoiceStatus::Paid(_) => Self::Paid,
            InvoiceStatus::Expired => Self::Expired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Expired => "expired",
        }
    }

    /// Whether this is an invoice's last word.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for StatusName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for StatusName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "paid" => Ok(Self::Paid),
            "expired" => Ok(Self::Expired),
            other => Err(format!("status '{other}': use pending, paid or expired")),
        }
    }
}

/// An outbox event's state as a word: `pending`, `delivered` or `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum DeliveryName {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryName {
    pub fn of(delivery: &Delivery) -> Self {
        match delivery {
            Delivery::Pending => Self::Pending,
            Delivery::Delivered { .. } => Self::Delivered,
            Delivery::Dead { .. } => Self::Dead,
        }
    }
}

impl DeliveryName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

impl std::fmt::Display for DeliveryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for DeliveryName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for DeliveryName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            other => Err(format!("state '{other}': use pending, delivered or dead")),
        }
    }
}

/// How many rows a listing returns: 50 unless asked, never more than 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimit(usize);

impl ListLimit {
    pub const DEFAULT: usize = 50;
    pub const MAX: usize = 1000;

    pub fn new(asked: Option<usize>) -> Self {
        Self(asked.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for ListLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// `?status=` means no filter, as if it were absent.
pub fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_parse_and_print_the_same() {
        for word in ["pending", "paid", "expired"] {
            assert_eq!(word.parse::<StatusName>().unwrap().as_str(), word);
        }
        assert!("PAID".parse::<StatusName>().is_err());
        assert!("dead".parse::<DeliveryName>().is_ok());
        assert!("paid".parse::<DeliveryName>().is_err());
    }

    #[test]
    fn list_limits_stay_within_bounds() {
        assert_eq!(ListLimit::new(None).get(), 50);
        assert_eq!(ListLimit::new(Some(0)).get(), 1);
        assert_eq!(ListLimit::new(Some(5000)).get(), 1000);
    }
}
