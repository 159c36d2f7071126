//! A Durable Object that counts binary WebSocket messages and answers a text
//! message with the count: the Rust floor of the document benchmark.

use std::cell::Cell;
use worker::{
    durable_object, event, Context, DurableObject, Env, Request, Response, Result, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

#[durable_object]
pub struct RustCountingDO {
    state: State,
    count: Cell<u64>,
}

impl DurableObject for RustCountingDO {
    fn new(state: State, _env: Env) -> Self {
        Self { state, count: Cell::new(0) }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        match message {
            WebSocketIncomingMessage::Binary(_) => self.count.set(self.count.get() + 1),
            WebSocketIncomingMessage::String(_) => ws.send_with_str(self.count.get().to_string())?,
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _clean: bool) -> Result<()> {
        let _ = ws.close(Some(code as u16), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    if req.headers().get("upgrade")?.as_deref() != Some("websocket") {
        return Response::error("expects a WebSocket upgrade", 404);
    }
    let ns = env.durable_object("RustCountingDO")?;
    ns.id_from_name(&req.path())?.get_stub()?.fetch_with_request(req).await
}
