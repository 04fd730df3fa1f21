//! Email through the operator's SMTP server (`RAYO_SMTP_URL`): `smtps://` is TLS from the
//! first byte; `smtp://` upgrades with STARTTLS when the server offers it, and insists on it
//! when there are credentials to send, so a password never crosses the network in clear.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::failure::{quote, Failure};
use super::message::Message;
use crate::domain::Secret;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs: the sender's domain.
    id_domain: String,
    timeout: Duration,
}

impl Mailer {
    /// `url` is `RAYO_SMTP_URL`, `from` is `RAYO_SMTP_FROM` (`Name <a@b>` or an address),
    /// `extra_root` a PEM certificate to trust besides the web's roots (a private mail relay),
    /// `hello` the name rayo gives itself in EHLO, `timeout` what one attempt may take.
    pub fn new(
        url: &Secret,
        from: &str,
        extra_root: Option<&[u8]>,
        hello: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let parsed = url::Url::parse(url.expose()).map_err(|_| {
            "RAYO_SMTP_URL: not a URL (smtps://user:pass@host:465 or smtp://host:587)".to_owned()
        })?;
        let host = parsed
            .host_str()
            .ok_or("RAYO_SMTP_URL: no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = (!parsed.username().is_empty()).then(|| {
            Credentials::new(
                decode(parsed.username()),
                decode(parsed.password().unwrap_or_default()),
            )
        });
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(pem) = extra_root {
            tls = tls.add_root_certificate(
                Certificate::from_pem(pem).map_err(|e| format!("RAYO_SMTP_CA_FILE: {e}"))?,
            );
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("RAYO_SMTP_URL: TLS: {e}"))?;
        let (tls, default_port) = match parsed.scheme() {
            "smtps" => (Tls::Wrapper(tls), 465),
            "smtp" if credentials.is_some() => (Tls::Required(tls), 587),
            "smtp" => (Tls::Opportunistic(tls), 587),
            other => {
                return Err(format!(
                    "RAYO_SMTP_URL: '{other}://' is not smtps:// (TLS) or smtp:// (STARTTLS)"
                ))
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(timeout))
            .hello_name(ClientId::Domain(hello.to_owned()));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("RAYO_SMTP_FROM: '{from}' is not a mailbox: {e}"))?;
        let id_domain = from.email.domain().to_owned();
        Ok(Self {
            transport: builder.build(),
            from,
            id_domain,
            timeout,
        })
    }

    /// Sends `message` to `to`. `id` names the event: every retry of it carries the same
    /// Message-ID, so a receiving system can tell a retry from a new message.
    pub async fn send(
        &self,
        to: &str,
        message: &Message,
        id: &str,
        unsubscribe: Option<&str>,
    ) -> Result<u16, Failure> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| Failure::now(format!("'{to}' is not an email address")))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            // lettre encodes the subject (RFC 2047); it is one line already.
            .subject(message.title.clone())
            .date_now()
            .message_id(Some(format!("<{id}@{}>", self.id_domain)))
            .user_agent(concat!("rayo/", env!("CARGO_PKG_VERSION")).to_owned());
        if let Some(url) = unsubscribe {
            // RFC 2369 and RFC 8058: mail clients show "unsubscribe", and one click (a POST)
            // turns the channel off without a sign-in.
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let email = builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html(message),
            ))
            .map_err(|e| Failure::now(format!("could not build the message: {e}")))?;
        // lettre's timeout is per read and write; the whole attempt is bounded too, so a
        // server that trickles cannot hold a delivery slot.
        let sent = tokio::time::timeout(self.timeout * 3, self.transport.send(email)).await;
        let Ok(sent) = sent else {
            return Err(Failure::now(
                "SMTP: the server did not finish in time".into(),
            ));
        };
        match sent {
            Ok(response) => Ok(u16::from(response.code())),
            Err(e) => {
                let status = e.status().map(u16::from);
                let words = quote(&e.to_string());
                Err(match status {
                    Some(code) => Failure::with_status(code, format!("SMTP: {words}")),
                    None if e.is_timeout() => {
                        Failure::now("SMTP: the server did not answer in time".into())
                    }
                    None => Failure::now(format!("SMTP: {words}")),
                })
            }
        }
    }
}

/// The short HTML alternative: the same words, escaped, in paragraphs, with the link as a link.
fn html(message: &Message) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut body = format!(
        "<!doctype html><html><body><h1 style=\"font-size:1.2em\">{}</h1>",
        escape(&message.title)
    );
    for paragraph in message.text.split("\n\n") {
        let lines: Vec<String> = paragraph
            .lines()
            .map(|line| match &message.link {
                Some(link) if line.contains(link.as_str()) => {
                    let (before, after) = line.split_once(link.as_str()).unwrap_or((line, ""));
                    format!(
                        "{}<a href=\"{}\">{}</a>{}",
                        escape(before),
                        escape(link),
                        escape(link),
                        escape(after)
                    )
                }
                _ => escape(line),
            })
            .collect();
        body.push_str(&format!("<p>{}</p>", lines.join("<br>")));
    }
    body.push_str("</body></html>");
    body
}
