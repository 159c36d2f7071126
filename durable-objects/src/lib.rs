//! Durable Objects (the single writer of each room) and the small HTTP glue that
//! both they and the Worker use to speak JSON and map errors.

mod ai;
pub mod clock;
pub mod config;
pub mod d1;
mod docs;
mod docstore;
pub mod http;
pub mod members;
pub mod notify;
pub mod person;
pub mod r2;
pub mod room;
pub mod search;
pub mod sessions;
mod store;
pub mod upload;
pub mod webcrypto;
mod workflows;

pub use person::PersonDO;
pub use room::RoomDO;
pub use upload::UploadDO;
