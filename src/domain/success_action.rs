use serde::{Deserialize, Serialize};

use super::UserError;

/// LUD-09 success actions, serialised exactly as wallets expect them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tag", rename_all = "lowercase")]
pub enum SuccessAction {
    Message { message: String },
    Url { description: String, url: String },
}

/// Combines the message and URL settings into one LUD-09 action. With a URL, the message is its
/// description; an empty string clears that part.
pub(super) fn success_action(
    current: Option<SuccessAction>,
    message: Option<String>,
    url: Option<String>,
    domain: &str,
) -> Result<Option<SuccessAction>, UserError> {
    let (mut cur_message, mut cur_url) = match current {
        None => (None, None),
        Some(SuccessAction::Message { message }) => (Some(message), None),
        Some(SuccessAction::Url { description, url }) => (Some(description), Some(url)),
    };
    if let Some(m) = message {
        check_text("success_message", &m, false)?;
        cur_message = Some(m).filter(|m| !m.is_empty());
    }
    if let Some(u) = url {
        if u.is_empty() {
            cur_url = None;
        } else {
            let parsed =
                url::Url::parse(&u).map_err(|e| UserError::Invalid(format!("success_url: {e}")))?;
            let host = match (parsed.host_str(), parsed.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                (None, _) => String::new(),
            };
            if !matches!(parsed.scheme(), "http" | "https") || !host.eq_ignore_ascii_case(domain) {
                return Err(UserError::Invalid(format!(
                    "success_url: must be an http(s) URL on {domain}, the domain of the callback (LUD-09)"
                )));
            }
            cur_url = Some(u);
        }
    }
    Ok(match (cur_message, cur_url) {
        (None, None) => None,
        (Some(message), None) => Some(SuccessAction::Message { message }),
        (description, Some(url)) => Some(SuccessAction::Url {
            description: description.unwrap_or_else(|| "Thank you! Open this link.".into()),
            url,
        }),
    })
}

/// Metadata text must be free of control characters: some nodes (Core Lightning) reject
/// descriptions whose JSON needs `\u` escapes. Long descriptions may keep line breaks.
pub(super) fn check_text(field: &str, text: &str, multiline: bool) -> Result<(), UserError> {
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return Err(UserError::Invalid(format!(
            "{field}: contains control characters"
        )));
    }
    Ok(())
}
