//! Parsed, valid-by-construction types. Nothing here knows about HTTP, storage or backends:
//! handlers turn raw input into these at the edge, and everything inside can rely on them.

mod amount;
mod api_key;
mod comment;
mod currency_code;
mod decimal;
mod filters;
mod hashes;
mod image;
mod invoice;
mod memo;
mod metadata;
mod names;
mod notify;
mod nwc_uri;
mod offer;
mod outbox;
mod payer_data;
mod secret;
mod success_action;
mod urls;
mod user;
mod username;

pub use amount::{AmountError, Msat};
pub use api_key::{ApiKey, API_KEY_PREFIX};
pub use comment::{Comment, CommentError, MAX_COMMENT_ALLOWED};
pub use currency_code::{CurrencyCode, CurrencyCodeError};
pub use decimal::{Decimal, DecimalError, MAX_SCALE as MAX_DECIMAL_SCALE};
pub use filters::{blank_is_none, DeliveryName, ListLimit, StatusName};
pub use hashes::{Hash32, Preimage};
pub use image::{Image, MAX_IMAGE_BYTES};
pub use invoice::{
    AppFields, ClientTag, DescriptionSource, FiatAmount, InvoiceRecord, InvoiceStatus, PaidDetails,
};
pub use memo::{Memo, MemoError, MAX_MEMO_BYTES};
pub use metadata::Metadata;
pub use names::{BackendName, Domain, NameError};
pub use notify::{ntfy_topic, Channel, ChannelError, NotifySettings, MAX_CHANNELS};
pub use nwc_uri::{NwcUri, NwcUriError};
pub use offer::{can_have_names, description_for, OfferPayment, OfferRecord};
pub use outbox::{Attempt, Delivery, EventId, EventKind, OutboxItem, Target, MAX_LOG};
pub use payer_data::{PayerData, PayerDataError, PayerDataField, PayerDataSpec};
pub use secret::Secret;
pub use success_action::SuccessAction;
pub use urls::{HttpUrl, RelayUrl, UrlError, WebhookUrl, MAX_URL_BYTES};
pub use user::{User, UserContext, UserError, UserSettings};
pub use username::{Username, UsernameError};
