//! LUD-01: an LNURL is the URL's UTF-8 bytes in bech32 with hrp `lnurl`, with no 90-character
//! limit (bech32's own code length, 1023 characters, is the bound).

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};

const HRP: Hrp = Hrp::parse_unchecked("lnurl");

/// Uppercase, as QR codes want it (alphanumeric mode).
pub fn encode(url: &str) -> Option<String> {
    bech32::encode_upper::<Bech32>(HRP, url.as_bytes()).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LnurlDecodeError {
    #[error("not bech32: {0}")]
    Bech32(String),
    #[error("the prefix is not 'lnurl'")]
    WrongPrefix,
    #[error("the data is not UTF-8")]
    NotUtf8,
}

/// Accepts `lnurl1...`, `LNURL1...` and the `lightning:` link form.
pub fn decode(lnurl: &str) -> Result<String, LnurlDecodeError> {
    let trimmed = lnurl.trim();
    let body = trimmed
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("lightning:"))
        .map_or(trimmed, |_| &trimmed[10..]);
    let checked = CheckedHrpstring::new::<Bech32>(body)
        .map_err(|e| LnurlDecodeError::Bech32(e.to_string()))?;
    if checked.hrp() != HRP {
        return Err(LnurlDecodeError::WrongPrefix);
    }
    String::from_utf8(checked.byte_iter().collect()).map_err(|_| LnurlDecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LUD01_URL: &str =
        "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df";
    const LUD01_LNURL: &str = "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS";

    #[test]
    fn encodes_the_lud01_vector() {
        assert_eq!(encode(LUD01_URL).unwrap(), LUD01_LNURL);
        assert_eq!(decode(LUD01_LNURL).unwrap(), LUD01_URL);
        assert_eq!(
            decode(&format!("lightning:{}", LUD01_LNURL.to_lowercase())).unwrap(),
            LUD01_URL
        );
    }

    #[test]
    fn refuses_mixed_case_and_other_prefixes() {
        assert!(decode("LNURL1dp68gurn8ghj7um9wfmxjcm99e3k7mf0v9cxj0m385ekvcenxc6r2c35xvukxefcv5mkvv34x5ekzd3ev56nyd3hxqurzepexejxxepnxscrvwfnv9nxzcn9xq6xyefhvgcxxcmyxymnserxfq5fns").is_err());
        let other = bech32::encode_lower::<Bech32>(Hrp::parse_unchecked("lnbc"), b"x").unwrap();
        assert_eq!(decode(&other), Err(LnurlDecodeError::WrongPrefix));
    }

    proptest! {
        #[test]
        fn round_trips_any_url_and_never_panics(url in "https://[a-z0-9.]{1,30}/[ -~]{0,200}", junk in "\\PC{0,120}") {
            prop_assert_eq!(decode(&encode(&url).unwrap()).unwrap(), url);
            let _ = decode(&junk);
        }
    }
}
