//! What a notification says: a title and a plain-text body, rendered from templates the
//! operator may override (`RAYO_NOTIFY_TEMPLATES`), with the person's privacy choice applied
//! before anything is rendered.

use std::path::Path;

use minijinja::{context, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::config::Domains;
use crate::domain::{InvoiceRecord, User};
use crate::invoices::PaymentRow;

/// The messages there are, and their built-in wording.
const TEMPLATES: [(&str, &str); 5] = [
    ("paid.txt", include_str!("../../templates/notify/paid.txt")),
    (
        "digest.txt",
        include_str!("../../templates/notify/digest.txt"),
    ),
    ("test.txt", include_str!("../../templates/notify/test.txt")),
    (
        "confirm.txt",
        include_str!("../../templates/notify/confirm.txt"),
    ),
    (
        "alert.txt",
        include_str!("../../templates/notify/alert.txt"),
    ),
];

/// Titles are one line, and short: they become email subjects and push titles.
const MAX_TITLE_CHARS: usize = 120;
/// Bodies stay short: a notification, not a statement.
const MAX_TEXT_CHARS: usize = 4000;
/// A payer's name or identifier is one line of at most this many characters, whatever their
/// wallet sent.
const MAX_NAME_CHARS: usize = 100;
/// A digest lists this many payments, then says how many more.
pub const DIGEST_LISTED: usize = 10;

/// One notification, as every channel sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub title: String,
    pub text: String,
    /// Where a tap on the notification leads (the account page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// ntfy's emoji tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("notification template {name}: {reason}")]
pub struct TemplateError {
    name: String,
    reason: String,
}

/// Renders notifications for the configured domains.
pub struct Composer {
    env: Environment<'static>,
    domains: Domains,
    /// The server's name in messages: the primary domain.
    server: String,
}

impl Composer {
    /// The built-in templates, each replaced by the file of the same name in `overrides` if
    /// there is one. Every template is rendered once here with sample values, so a broken
    /// override stops the start rather than every notification.
    pub fn new(domains: Domains, overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // Plain text: nothing is escaped, and a missing value is an error, not a blank.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        for (name, builtin) in TEMPLATES {
            let source = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|e| TemplateError {
                        name: path.display().to_string(),
                        reason: e.to_string(),
                    })?
                }
                _ => builtin.to_owned(),
            };
            env.add_template_owned(name, source)
                .map_err(|e| TemplateError {
                    name: name.into(),
                    reason: e.to_string(),
                })?;
        }
        let server = domains.primary().domain().to_string();
        let composer = Self {
            env,
            domains,
            server,
        };
        composer.check()?;
        Ok(composer)
    }

    fn check(&self) -> Result<(), TemplateError> {
        let sample = context! {
            address => "alice@example.com", sats => "21", fiat => "0.02 USD", payer => "Bob",
            comment => "thanks", link => "https://example.com/account", count => 2,
            from => "12:00", until => "12:10", more => 0, server => "example.com",
            email => "alice@example.org", valid_for => "24 hours", what => "a check",
            details => "details",
            payments => vec![context! { sats => "21", payer => "Bob", comment => "thanks" }],
        };
        for (name, _) in TEMPLATES {
            self.render(name, &sample)?;
        }
        Ok(())
    }

    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<Message, TemplateError> {
        let fail = |e: minijinja::Error| TemplateError {
            name: name.into(),
            reason: e.to_string(),
        };
        let rendered = self
            .env
            .get_template(name)
            .map_err(fail)?
            .render(ctx)
            .map_err(fail)?;
        let (title, text) = rendered.split_once('\n').unwrap_or((&rendered, ""));
        Ok(Message {
            title: one_line(title, MAX_TITLE_CHARS),
            text: tidy(text),
            link: None,
            tags: Vec::new(),
        })
    }

    /// The account page of `user`, at the payment `hash` if given.
    pub fn account_link(&self, user: &User, hash: Option<&str>) -> String {
        let base = self.domains.for_user(user.domain.as_ref()).base();
        match hash {
            Some(hash) => format!("{base}/account?q={hash}#payments"),
            None => format!("{base}/account#notifications"),
        }
    }

    pub fn address(&self, user: &User) -> String {
        format!(
            "{}@{}",
            user.name,
            self.domains.for_user(user.domain.as_ref()).domain()
        )
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn base_for(&self, user: &User) -> &str {
        self.domains.for_user(user.domain.as_ref()).base()
    }

    /// "You were paid": amount, address, and, if the person wants them sent, who paid and what
    /// they wrote.
    pub fn paid(&self, record: &InvoiceRecord, user: &User, now: u64) -> Message {
        let row = PaymentRow::of(record, now);
        let details = user.notify.details;
        let link = self.account_link(user, Some(&row.payment_hash));
        let ctx = context! {
            address => self.address(user),
            sats => grouped(&row.sats),
            fiat => row.fiat,
            payer => details.then(|| row.payer.or(row.zap_from)).flatten().map(|p| one_line(&p, MAX_NAME_CHARS)),
            comment => details.then_some(row.comment).flatten(),
            zap => record.described_by.zap_request().is_some(),
            link => link.clone(),
            server => self.server.clone(),
        };
        let mut message = self.render("paid.txt", &ctx).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a notification template failed; sending the plain form");
            Message {
                title: format!("{} sats to {}", row.sats, self.address(user)),
                text: link.clone(),
                link: None,
                tags: Vec::new(),
            }
        });
        message.link = Some(link);
        message.tags = vec![if record.described_by.zap_request().is_some() {
            "zap".into()
        } else {
            "moneybag".into()
        }];
        message
    }

    /// One message for the payments paid between `from` and `until`.
    pub fn digest(&self, user: &User, paid: &[InvoiceRecord], from: u64, until: u64) -> Message {
        let rows: Vec<PaymentRow> = paid.iter().map(|r| PaymentRow::of(r, until)).collect();
        let total: u64 = paid
            .iter()
            .map(|r| match r.status {
                crate::domain::InvoiceStatus::Paid(p) => p.amount_received_msat.msat(),
                _ => 0,
            })
            .sum();
        let details = user.notify.details;
        let listed: Vec<minijinja::Value> = rows
            .iter()
            .take(DIGEST_LISTED)
            .map(|row| {
                context! {
                    sats => grouped(&row.sats),
                    payer => details
                        .then(|| row.payer.clone().or(row.zap_from.clone()))
                        .flatten()
                        .map(|p| one_line(&p, MAX_NAME_CHARS)),
                    comment => details.then(|| row.comment.clone()).flatten(),
                }
            })
            .collect();
        let link = self
            .account_link(user, None)
            .replace("#notifications", "#payments");
        let ctx = context! {
            address => self.address(user),
            count => rows.len(),
            sats => grouped(&crate::domain::Msat::from_msat(total).sats_decimal()),
            from => clock_time(from),
            until => clock_time(until),
            payments => listed,
            more => rows.len().saturating_sub(DIGEST_LISTED),
            link => link.clone(),
            server => self.server.clone(),
        };
        let mut message = self.render("digest.txt", &ctx).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the digest template failed; sending the plain form");
            Message {
                title: format!("{} payments to {}", rows.len(), self.address(user)),
                text: link.clone(),
                link: None,
                tags: Vec::new(),
            }
        });
        message.link = Some(link);
        message.tags = vec!["moneybag".into()];
        message
    }

    pub fn test(&self, user: &User) -> Message {
        let ctx = context! { address => self.address(user), server => self.server.clone() };
        let mut message = self.render("test.txt", &ctx).unwrap_or_else(|_| Message {
            title: "rayo notifications work".into(),
            text: String::new(),
            link: None,
            tags: Vec::new(),
        });
        message.link = Some(self.account_link(user, None));
        message.tags = vec!["white_check_mark".into()];
        message
    }

    pub fn confirm(&self, user: &User, email: &str, link: &str, valid_for: &str) -> Message {
        let ctx = context! {
            address => self.address(user), server => self.server.clone(), email => email,
            link => link, valid_for => valid_for,
        };
        let mut message = self
            .render("confirm.txt", &ctx)
            .unwrap_or_else(|_| Message {
                title: "Confirm payment alerts".into(),
                text: link.to_owned(),
                link: None,
                tags: Vec::new(),
            });
        message.link = Some(link.to_owned());
        message
    }

    /// Something for the operator: what, in a line, and the details.
    pub fn alert(&self, what: &str, details: &str, link: &str) -> Message {
        let ctx = context! {
            server => self.server.clone(), what => what, details => details, link => link,
        };
        let mut message = self.render("alert.txt", &ctx).unwrap_or_else(|_| Message {
            title: format!("{}: {what}", self.server),
            text: details.to_owned(),
            link: None,
            tags: Vec::new(),
        });
        message.link = Some(link.to_owned());
        message.tags = vec!["warning".into()];
        message
    }
}

/// "12345" -> "12,345": amounts people read at a glance.
fn grouped(sats: &str) -> String {
    let (whole, fraction) = sats.split_once('.').unwrap_or((sats, ""));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

fn clock_time(at: u64) -> String {
    crate::clock::when(at).trim_end_matches(" UTC").to_owned()
}

/// One line, no control characters, at most `max` characters: what a header or a push title
/// can carry whatever a payer wrote.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The body: lines kept, other control characters dropped, runs of blank lines folded.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines() {
        let line: String = line
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
        if out.chars().count() > MAX_TEXT_CHARS {
            break;
        }
    }
    let trimmed = out.trim_end();
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        let mut cut: String = trimmed.chars().take(MAX_TEXT_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Domains {
        crate::config::Settings::defaults().domains().unwrap()
    }

    #[test]
    fn the_operator_can_reword_a_message_and_a_broken_template_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("test.txt"),
            "¡Hola {{ address }}!\nEsto es una prueba de {{ server }}.",
        )
        .unwrap();
        let composer = Composer::new(domains(), Some(dir.path())).unwrap();
        let user = crate::domain::User::create(
            crate::domain::Username::parse("alice").unwrap(),
            Default::default(),
            &crate::domain::UserContext {
                domain: "localhost:8080",
                now: 1,
                new_secret: &|| crate::domain::Secret::new(""),
            },
        )
        .unwrap();
        let test = composer.test(&user);
        assert_eq!(test.title, "¡Hola alice@localhost:8080!");
        assert_eq!(test.text, "Esto es una prueba de localhost:8080.");
        // The others keep their built-in words.
        assert!(composer
            .confirm(&user, "a@b.example", "https://x", "a day")
            .title
            .starts_with("Confirm"));
        std::fs::write(dir.path().join("paid.txt"), "{% if %}").unwrap();
        let broken = Composer::new(domains(), Some(dir.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(broken.contains("paid.txt"), "{broken}");
    }

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(grouped("21"), "21");
        assert_eq!(grouped("1000"), "1,000");
        assert_eq!(grouped("1234567.5"), "1,234,567.5");
    }

    #[test]
    fn titles_are_one_short_line_whatever_they_hold() {
        assert_eq!(one_line("a\r\nBcc: x@y\u{7}", 80), "a Bcc: x@y");
        assert_eq!(one_line(&"x".repeat(200), 10).chars().count(), 10);
    }

    #[test]
    fn bodies_keep_lines_and_fold_blank_runs() {
        assert_eq!(tidy("\n\na\n\n\n\nb\u{1b}[31m\n"), "a\n\nb[31m");
    }
}
