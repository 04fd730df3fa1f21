//! Parsed, valid-by-construction types. Nothing here knows about HTTP, storage or backends:
//! handlers turn raw input into these at the edge, and everything inside can rely on them.

mod amount;
mod comment;
mod hashes;
mod invoice;
mod metadata;
mod payer_data;
mod secret;
mod user;
mod username;

pub use amount::{AmountError, Msat};
pub use comment::{Comment, CommentError, MAX_COMMENT_ALLOWED};
pub use hashes::{Hash32, Preimage};
pub use invoice::{DescriptionSource, InvoiceRecord, InvoiceStatus, PaidDetails};
pub use metadata::Metadata;
pub use payer_data::{PayerData, PayerDataError, PayerDataField, PayerDataSpec};
pub use secret::Secret;
pub use user::{Image, SuccessAction, User, UserContext, UserError, UserSettings};
pub use username::{Username, UsernameError};
