//! Paying an address: the one use case behind a wallet's callback, the pay page's form and an
//! app's invoice. Each runs the same steps once, in the same order: admit (the invoice rate
//! limit, before anything that costs more than refusing), find the payable user, resolve
//! their backend, check and convert what was asked against it, and issue. Routes only parse
//! the request and say the answer in their audience's words.

use std::sync::Arc;
use std::time::Duration;

use crate::directory::{Directory, Unpayable};
use crate::domain::{AppFields, Comment, FiatAmount, Hash32, InvoiceRecord, Msat, User, Username};
use crate::invoices::{Description, IssueError, Issuer, NewInvoice, Upstream};
use crate::limits::{Admission, ClientKey, Origin};
use crate::lnurl::{FormAmount, LnurlError, PayProfile, PayResponse, PaymentRequest, VerifyKey};
use crate::prices::PriceBook;

/// What a payer asked of an address.
pub enum Ask<'a> {
    /// A wallet's callback query string, as it came.
    Callback(&'a str),
    /// The pay page's form: an amount and a comment.
    Form {
        amount: FormAmount<'a>,
        comment: Option<&'a str>,
    },
}

/// A payer's invoice, and what the wallet is told.
pub struct Paid {
    pub response: PayResponse,
    pub payment_hash: Hash32,
}

/// What an invoice is made of, once asked for and checked: a payer's (with its comment) or
/// an app's (with its webhook, metadata and return URL).
pub struct Order {
    pub amount: Msat,
    pub fiat: Option<FiatAmount>,
    pub description: Description,
    pub comment: Option<Comment>,
    pub expiry: Duration,
    pub app: Option<AppFields>,
}

/// Why an owner's order was refused before any backend was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRefusal {
    NoUser(Username),
    Disabled(Username),
    Issue(IssueError),
}

impl From<IssueError> for OrderRefusal {
    fn from(e: IssueError) -> Self {
        Self::Issue(e)
    }
}

/// The use case, over the services it needs.
pub struct Payments<'a> {
    pub issuer: &'a Issuer,
    pub directory: &'a Directory,
    pub prices: &'a PriceBook,
    pub verify_key: &'a VerifyKey,
    /// How long a payer's invoice lasts.
    pub expiry: Duration,
}

impl Payments<'_> {
    /// The user behind the address `name` on the domain `host` asked for, if they take
    /// payments.
    pub async fn payable(
        &self,
        host: Option<&str>,
        name: &str,
    ) -> Result<Arc<PayProfile>, LnurlError> {
        self.directory
            .payable(host, name)
            .await
            .map_err(|refusal| match refusal {
                Unpayable::Unknown => LnurlError::new("Unknown user"),
                Unpayable::Disabled => LnurlError::new("This address is not accepting payments"),
            })
    }

    /// A payer's payment to the address `name` on `host`.
    pub async fn pay(
        &self,
        host: Option<&str>,
        name: &str,
        client: Option<ClientKey>,
        ask: Ask<'_>,
    ) -> Result<Paid, LnurlError> {
        let admission = self.issuer.admit(client, Origin::Payer)?;
        let profile = self.payable(host, name).await?;
        let user = &profile.user;
        let upstream = self.issuer.upstream(user)?;
        let capabilities = upstream.capabilities();
        let payment = match ask {
            Ask::Callback(query) => {
                PaymentRequest::from_query(query, &profile, capabilities, self.prices)?
            }
            Ask::Form { amount, comment } => {
                PaymentRequest::from_form(amount, comment, &profile, capabilities, self.prices)?
            }
        };
        let order = Order {
            amount: payment.amount,
            fiat: payment.fiat,
            description: payment.description,
            comment: payment.comment,
            expiry: self.expiry,
            app: None,
        };
        let record = self.issue(&upstream, user, order, admission).await?;
        let payment_hash = record.payment_hash;
        let public_url = self.directory.public_url_for(user);
        let verify = self.verify_key.url(public_url, &user.name, &payment_hash);
        Ok(Paid {
            response: PayResponse::of(record, user.success_action.clone(), verify),
            payment_hash,
        })
    }

    /// An invoice the user's own app (or the operator) orders for `name`: `order` reads what
    /// was asked, against the user.
    pub async fn order<E: From<OrderRefusal>>(
        &self,
        name: &Username,
        client: Option<ClientKey>,
        order: impl FnOnce(&User) -> Result<Order, E>,
    ) -> Result<InvoiceRecord, E> {
        let admission = self
            .issuer
            .admit(client, Origin::Owner)
            .map_err(OrderRefusal::from)?;
        let profile = self
            .directory
            .payable_user(name)
            .await
            .map_err(|refusal| match refusal {
                Unpayable::Unknown => OrderRefusal::NoUser(name.clone()),
                Unpayable::Disabled => OrderRefusal::Disabled(name.clone()),
            })?;
        let user = &profile.user;
        let upstream = self.issuer.upstream(user).map_err(OrderRefusal::from)?;
        let order = order(user)?;
        let record = self
            .issue(&upstream, user, order, admission)
            .await
            .map_err(OrderRefusal::from)?;
        Ok(record)
    }

    async fn issue(
        &self,
        upstream: &Upstream,
        user: &User,
        order: Order,
        admission: Admission,
    ) -> Result<InvoiceRecord, IssueError> {
        let invoice = NewInvoice {
            user,
            amount: order.amount,
            description: order.description,
            comment: order.comment,
            expiry: order.expiry,
            app: order.app,
            fiat: order.fiat,
            admission,
        };
        self.issuer.issue(upstream, invoice).await
    }
}
