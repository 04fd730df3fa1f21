use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// A QR code as inline SVG, dark on light with a quiet zone, for `data` (already uppercase
/// where it can be: bech32 in uppercase fits the denser alphanumeric mode).
pub fn svg(data: &str) -> String {
    match QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M) {
        Ok(code) => {
            let document = code
                .render::<svg::Color<'_>>()
                .min_dimensions(240, 240)
                .dark_color(svg::Color("#000000"))
                .light_color(svg::Color("#ffffff"))
                .quiet_zone(true)
                .build();
            // Inline in HTML: the XML declaration has no place there.
            match document.find("<svg") {
                Some(start) => document[start..].to_owned(),
                None => document,
            }
        }
        // Only data beyond a QR code's capacity fails; bolt11 invoices and LNURLs fit.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg() {
        let svg = super::svg("LIGHTNING:LNURL1DP68GURN8GHJ7");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
