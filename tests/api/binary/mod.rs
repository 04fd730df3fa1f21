//! The real `rayo` binary, end to end, as an operator and a wallet would use it.

mod crashes;
mod logs;
mod serving;
