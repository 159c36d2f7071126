//! Tessera's core: every rule of the product as plain functions and types, with no
//! I/O and no Workers types, so that all of it is tested natively with `cargo test`.
//! The Worker (`functions/`) and the Durable Objects (`durable-objects/`) translate
//! between the platform and this crate.

pub mod access;
pub mod actions;
pub mod actor;
pub mod ai;
pub mod api;
pub mod approval_inbox;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod chat;
pub mod dates;
pub mod docs;
pub mod dry_run;
pub mod error;
pub mod files;
pub mod hmac;
pub mod ids;
pub mod jwt;
pub mod links;
#[cfg(test)]
mod migrations;
pub mod notify;
pub mod presence;
pub mod protocol;
pub mod ratelimit;
pub mod room;
pub mod rooms;
pub mod rules;
pub mod search;
pub mod users;

pub use error::ApiError;
