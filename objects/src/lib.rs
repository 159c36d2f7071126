//! The objects' Worker script (`objects/wrangler.toml`): the classes the
//! runtime instantiates for `RoomDO`, `UploadDO` and `PersonDO`, each handing
//! every event to the object of the same name in `tessera-durable-objects`.
//!
//! The objects run in a script of their own because one module holding them
//! and the Worker's routes was over the 1 MB bundle limit; apart, each half is
//! well under it (BENCHMARKS.md, "Worker bundle"). The Worker reaches them
//! through Durable Object bindings naming this script.

use tessera_durable_objects as objects;
use worker::{
    durable_object, event, Context, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage,
};

/// Nothing routes to this script but the objects: a request to its own URL
/// gets a 404 that says where the API is.
#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> worker::Result<Response> {
    Response::error(
        "this script only hosts Tessera's Durable Objects; the API is the tessera Worker's",
        404,
    )
}

/// One handler of a class's events, handing the event to the wrapped object:
/// `sockets` are the hibernatable WebSocket events, `socket_errors` their
/// errors (an object without it takes the runtime's default).
macro_rules! handler {
    (fetch) => {
        async fn fetch(&self, req: Request) -> worker::Result<Response> {
            self.0.fetch(req).await
        }
    };
    (alarm) => {
        async fn alarm(&self) -> worker::Result<Response> {
            self.0.alarm().await
        }
    };
    (sockets) => {
        async fn websocket_message(
            &self,
            ws: WebSocket,
            message: WebSocketIncomingMessage,
        ) -> worker::Result<()> {
            self.0.websocket_message(ws, message).await
        }

        async fn websocket_close(
            &self,
            ws: WebSocket,
            code: usize,
            reason: String,
            clean: bool,
        ) -> worker::Result<()> {
            self.0.websocket_close(ws, code, reason, clean).await
        }
    };
    (socket_errors) => {
        async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> worker::Result<()> {
            self.0.websocket_error(ws, error).await
        }
    };
}

/// The class the runtime instantiates for `$name`, wrapping the object of
/// the same name and handing it the events listed.
macro_rules! class {
    ($name:ident { $($events:ident),* }) => {
        #[durable_object]
        pub struct $name(objects::$name);

        impl DurableObject for $name {
            fn new(state: State, env: Env) -> Self {
                Self(objects::$name::new(state, env))
            }

            $(handler!($events);)*
        }
    };
}

class!(RoomDO {
    fetch,
    sockets,
    socket_errors,
    alarm
});
class!(UploadDO { fetch, alarm });
class!(PersonDO {
    fetch,
    sockets,
    alarm
});
