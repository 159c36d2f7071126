//! Durable Objects (the single writer of each room) and the small HTTP glue that
//! both they and the Worker use to speak JSON and map errors.

pub mod clock;
pub mod config;
pub mod d1;
pub mod http;
pub mod members;
pub mod person;
pub mod r2;
pub mod room;
pub mod room_client;
pub mod sessions;
pub mod sql;
pub mod upload;
pub mod webcrypto;

pub use person::PersonDO;
pub use room::RoomDO;
pub use upload::UploadDO;
