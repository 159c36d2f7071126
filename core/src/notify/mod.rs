//! Notifications and integrations: what reaches a person outside the room they
//! are looking at (the inbox, live badges, web push, email) and what lets other
//! systems hear of and post into a room (signed outgoing webhooks, incoming
//! webhooks, API keys). Everything here is a plain function of its inputs and
//! the time; the Worker and the objects do the I/O (and the elliptic-curve and
//! AES work through WebCrypto, see `webpush`).

pub mod apikeys;
pub mod email;
pub mod fanout;
pub mod inbox;
pub mod incoming;
pub mod jobs;
pub mod person;
pub mod prefs;
pub mod webhooks;
pub mod webpush;
