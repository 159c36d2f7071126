//! Language-model providers as data: the configured fallback chain, the HTTP
//! request each provider expects, the parsing of its answers and errors, and
//! the policies around a call (timeouts, retries with backoff and jitter, the
//! per-provider circuit breaker, token costs). The Worker only sends the
//! requests built here and hands back what came.

use crate::ai::Prompt;
use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Attempts per provider for one call (the first and two retries).
pub const ATTEMPTS_PER_PROVIDER: u32 = 3;
/// Consecutive failures that open a provider's circuit.
pub const BREAKER_THRESHOLD: u32 = 3;
/// How long an open circuit skips its provider before one trial call.
pub const BREAKER_OPEN_MS: u64 = 60_000;
const BACKOFF_BASE_MS: u64 = 250;
const BACKOFF_CAP_MS: u64 = 4_000;
const DEFAULT_TIMEOUT_MS: u64 = 20_000;
const DEFAULT_CONTEXT_TOKENS: u32 = 8_000;
const PROVIDERS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI chat completions and everything that speaks it (Groq, OpenAI,
    /// Ollama, vLLM, LM Studio).
    Openai,
    Anthropic,
    /// The Workers AI binding `AI`.
    WorkersAi,
    /// Deterministic, offline, free: always last in the chain.
    Builtin,
}

/// One entry of `AI_PROVIDERS` (a JSON array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// How the audit log and usage table name it; defaults to the kind.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The name of the secret that holds the API key (never the key itself).
    #[serde(default)]
    pub key: Option<String>,
    /// US dollars per million input / output tokens, for cost accounting.
    #[serde(default)]
    pub price_in: f64,
    #[serde(default)]
    pub price_out: f64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// The model's context window; long files are cut into chunks that fit.
    #[serde(default = "default_context")]
    pub context_tokens: u32,
    /// The model that makes embeddings for semantic search, if this provider
    /// has one (`core::search::embed`).
    #[serde(default)]
    pub embedding_model: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_context() -> u32 {
    DEFAULT_CONTEXT_TOKENS
}

impl ProviderConfig {
    pub fn builtin() -> Self {
        ProviderConfig {
            kind: ProviderKind::Builtin,
            name: "builtin".into(),
            base_url: None,
            model: None,
            key: None,
            price_in: 0.0,
            price_out: 0.0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            context_tokens: 32_000,
            embedding_model: None,
        }
    }

    /// Cost of a call in millionths of a dollar.
    pub fn cost_micros(&self, tokens_in: u64, tokens_out: u64) -> u64 {
        (tokens_in as f64 * self.price_in + tokens_out as f64 * self.price_out).round() as u64
    }
}

/// Parses `AI_PROVIDERS`. Empty means the built-in provider alone; the
/// built-in provider is always the last link, so a room always gets an answer.
pub fn parse_chain(config: &str) -> Result<Vec<ProviderConfig>, ApiError> {
    let bad = |m: String| ApiError::invalid(format!("AI_PROVIDERS: {m}"));
    let mut chain: Vec<ProviderConfig> = if config.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(config).map_err(|e| bad(e.to_string()))?
    };
    if chain.len() > PROVIDERS_MAX {
        return Err(bad(format!("at most {PROVIDERS_MAX} providers")));
    }
    chain.retain(|p| p.kind != ProviderKind::Builtin);
    for p in &mut chain {
        if p.name.is_empty() {
            p.name = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
        }
        if p.model.as_deref().is_none_or(str::is_empty) {
            return Err(bad(format!("provider `{}` needs a model", p.name)));
        }
        if p.timeout_ms == 0 || p.context_tokens < 512 {
            return Err(bad(format!(
                "provider `{}` needs a timeout and a context of at least 512 tokens",
                p.name
            )));
        }
        let base = p.base_url.get_or_insert_with(|| match p.kind {
            ProviderKind::Anthropic => "https://api.anthropic.com".into(),
            ProviderKind::Openai => "https://api.openai.com/v1".into(),
            _ => String::new(),
        });
        if p.kind != ProviderKind::WorkersAi
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(bad(format!(
                "provider `{}` needs an http(s) base_url",
                p.name
            )));
        }
    }
    chain.push(ProviderConfig::builtin());
    Ok(chain)
}

/// An HTTP request to a provider, for the Worker to send.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// The request `prompt` becomes for an HTTP provider (`api_key` read from the
/// configured secret).
pub fn http_call(p: &ProviderConfig, api_key: Option<&str>, prompt: &Prompt) -> HttpCall {
    let base = p
        .base_url
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let model = p.model.clone().unwrap_or_default();
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    match p.kind {
        ProviderKind::Anthropic => {
            if let Some(k) = api_key {
                headers.push(("x-api-key".into(), k.into()));
            }
            headers.push(("anthropic-version".into(), "2023-06-01".into()));
            HttpCall {
                url: format!("{base}/v1/messages"),
                headers,
                body: json!({
                    "model": model,
                    "system": prompt.system,
                    "messages": [{ "role": "user", "content": prompt.user }],
                    "max_tokens": prompt.max_tokens,
                    "temperature": 0.2,
                }),
            }
        }
        _ => {
            if let Some(k) = api_key {
                headers.push(("authorization".into(), format!("Bearer {k}")));
            }
            let mut body = json!({
                "model": model,
                "messages": chat_messages(prompt),
                "max_tokens": prompt.max_tokens,
                "temperature": 0.2,
            });
            if prompt.json {
                body["response_format"] = json!({ "type": "json_object" });
            }
            HttpCall {
                url: format!("{base}/chat/completions"),
                headers,
                body,
            }
        }
    }
}

/// The input of the Workers AI binding's text-generation models.
pub fn workers_ai_input(prompt: &Prompt) -> Value {
    json!({ "messages": chat_messages(prompt), "max_tokens": prompt.max_tokens })
}

fn chat_messages(prompt: &Prompt) -> Value {
    json!([
        { "role": "system", "content": prompt.system },
        { "role": "user", "content": prompt.user },
    ])
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub text: String,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// Why a call failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub retryable: bool,
    pub message: String,
    /// From a `Retry-After` header, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl ProviderError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ProviderError {
            retryable: true,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        ProviderError {
            retryable: false,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// The failure an HTTP status other than 2xx is: 429, 408 and 5xx may be
/// retried, other statuses are final for the provider.
pub fn http_failure(status: u16, retry_after: Option<&str>, body: &str) -> Option<ProviderError> {
    if (200..300).contains(&status) {
        return None;
    }
    // Kept in call records and the audit log: bounded whatever the provider sent.
    let detail: String = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
        .chars()
        .take(200)
        .collect();
    let retryable = status == 429 || status == 408 || status >= 500;
    Some(ProviderError {
        retryable,
        message: format!("HTTP {status}: {detail}"),
        retry_after_ms: retry_after
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s * 1000.0) as u64),
    })
}

/// Reads a provider's HTTP answer. 429, 408 and 5xx may be retried; other
/// errors and malformed bodies are final for this provider.
pub fn parse_http_reply(
    kind: ProviderKind,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    prompt: &Prompt,
) -> Result<Completion, ProviderError> {
    if let Some(e) = http_failure(status, retry_after, body) {
        return Err(e);
    }
    let v: Value = serde_json::from_str(body)
        .map_err(|e| ProviderError::fatal(format!("the answer is not JSON: {e}")))?;
    let (text, tin, tout) = match kind {
        ProviderKind::Anthropic => {
            let parts = v["content"]
                .as_array()
                .ok_or_else(|| ProviderError::fatal("the answer has no `content`"))?;
            let text: String = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            (
                text,
                v["usage"]["input_tokens"].as_u64(),
                v["usage"]["output_tokens"].as_u64(),
            )
        }
        _ => {
            let text = v["choices"][0]["message"]["content"]
                .as_str()
                .ok_or_else(|| {
                    ProviderError::fatal("the answer has no choices[0].message.content")
                })?;
            (
                text.to_string(),
                v["usage"]["prompt_tokens"].as_u64(),
                v["usage"]["completion_tokens"].as_u64(),
            )
        }
    };
    Ok(completion(text, tin, tout, prompt))
}

/// Reads the Workers AI binding's answer (`{response, usage?}`).
pub fn parse_workers_ai(output: &Value, prompt: &Prompt) -> Result<Completion, ProviderError> {
    let text = output["response"]
        .as_str()
        .ok_or_else(|| ProviderError::fatal("the answer has no `response`"))?;
    Ok(completion(
        text.to_string(),
        output["usage"]["prompt_tokens"].as_u64(),
        output["usage"]["completion_tokens"].as_u64(),
        prompt,
    ))
}

/// Providers that do not report usage are charged an estimate.
fn completion(text: String, tin: Option<u64>, tout: Option<u64>, prompt: &Prompt) -> Completion {
    Completion {
        tokens_in: tin.unwrap_or_else(|| prompt.estimated_tokens()),
        tokens_out: tout.unwrap_or_else(|| estimate_tokens(&text)),
        text,
    }
}

/// About four characters per token: what budgets are checked with before a call.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Milliseconds to wait before attempt `attempt` (1 = the first retry):
/// exponential with full jitter (`jitter` in [0, 1)), at least what the
/// provider asked for in `Retry-After`, never above the cap.
pub fn backoff_ms(attempt: u32, jitter: f64, retry_after_ms: Option<u64>) -> u64 {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP_MS);
    let jittered = (ceiling as f64 * jitter.clamp(0.0, 1.0)) as u64;
    jittered
        .max(retry_after_ms.unwrap_or(0))
        .min(BACKOFF_CAP_MS)
}

/// A provider's circuit breaker: after `BREAKER_THRESHOLD` consecutive
/// failures the provider is skipped for `BREAKER_OPEN_MS`, then one call is let
/// through; a success closes it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    pub failures: u32,
    pub open_until_ms: u64,
}

impl Breaker {
    pub fn allows(&self, now_ms: u64) -> bool {
        now_ms >= self.open_until_ms
    }

    pub fn record(&mut self, success: bool, now_ms: u64) {
        if success {
            *self = Breaker::default();
            return;
        }
        self.failures += 1;
        if self.failures >= BREAKER_THRESHOLD {
            self.open_until_ms = now_ms + BREAKER_OPEN_MS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Prompt {
        Prompt {
            system: "be brief".into(),
            user: "hello there".into(),
            max_tokens: 100,
            json: true,
        }
    }

    #[test]
    fn the_chain_always_ends_with_the_builtin_provider() {
        let chain = parse_chain("").unwrap();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].kind, ProviderKind::Builtin);
        let chain = parse_chain(
            r#"[{"kind":"builtin"},{"kind":"openai","base_url":"http://127.0.0.1:9/v1","model":"m","key":"K"},
                {"kind":"anthropic","model":"claude"}]"#,
        )
        .unwrap();
        let kinds: Vec<_> = chain.iter().map(|p| (p.kind, p.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ProviderKind::Openai, "openai"),
                (ProviderKind::Anthropic, "anthropic"),
                (ProviderKind::Builtin, "builtin")
            ]
        );
        assert_eq!(
            chain[1].base_url.as_deref(),
            Some("https://api.anthropic.com")
        );
    }

    #[test]
    fn bad_chains_are_refused_with_the_reason() {
        for bad in [
            "{",
            r#"[{"kind":"openai"}]"#,
            r#"[{"kind":"openai","model":"m","base_url":"ftp://x"}]"#,
            r#"[{"kind":"nope","model":"m"}]"#,
            r#"[{"kind":"openai","model":"m","api_key":"sk-inline"}]"#,
            r#"[{"kind":"openai","model":"m","timeout_ms":0}]"#,
        ] {
            let e = parse_chain(bad).unwrap_err();
            assert!(e.to_string().starts_with("AI_PROVIDERS"), "{bad}: {e}");
        }
    }

    #[test]
    fn openai_requests_and_answers() {
        let p = &parse_chain(r#"[{"kind":"openai","base_url":"http://h/v1/","model":"llama"}]"#)
            .unwrap()[0];
        let call = http_call(p, Some("sk"), &prompt());
        assert_eq!(call.url, "http://h/v1/chat/completions");
        assert!(call
            .headers
            .contains(&("authorization".into(), "Bearer sk".into())));
        assert_eq!(call.body["model"], "llama");
        assert_eq!(call.body["messages"][0]["role"], "system");
        assert_eq!(call.body["messages"][1]["content"], "hello there");
        assert_eq!(call.body["response_format"]["type"], "json_object");
        let ok = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
        let c = parse_http_reply(ProviderKind::Openai, 200, None, ok, &prompt()).unwrap();
        assert_eq!((c.text.as_str(), c.tokens_in, c.tokens_out), ("hi", 12, 3));
        // No usage reported: estimated.
        let c = parse_http_reply(
            ProviderKind::Openai,
            200,
            None,
            r#"{"choices":[{"message":{"content":"abcdefgh"}}]}"#,
            &prompt(),
        )
        .unwrap();
        assert_eq!(c.tokens_out, 2);
        assert!(c.tokens_in > 0);
    }

    #[test]
    fn anthropic_requests_and_answers() {
        let p =
            &parse_chain(r#"[{"kind":"anthropic","model":"claude","key":"ANTHROPIC_API_KEY"}]"#)
                .unwrap()[0];
        let call = http_call(p, Some("k"), &prompt());
        assert_eq!(call.url, "https://api.anthropic.com/v1/messages");
        assert!(call.headers.contains(&("x-api-key".into(), "k".into())));
        assert_eq!(call.body["system"], "be brief");
        assert_eq!(call.body["messages"][0]["role"], "user");
        let ok = r#"{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"usage":{"input_tokens":5,"output_tokens":2}}"#;
        let c = parse_http_reply(ProviderKind::Anthropic, 200, None, ok, &prompt()).unwrap();
        assert_eq!((c.text.as_str(), c.tokens_in, c.tokens_out), ("ab", 5, 2));
    }

    #[test]
    fn workers_ai_input_and_output() {
        let input = workers_ai_input(&prompt());
        assert_eq!(input["messages"][1]["content"], "hello there");
        let c = parse_workers_ai(&json!({ "response": "ok" }), &prompt()).unwrap();
        assert_eq!(c.text, "ok");
        assert!(parse_workers_ai(&json!({ "result": 1 }), &prompt()).is_err());
    }

    #[test]
    fn errors_say_whether_to_retry() {
        let p = prompt();
        let e = parse_http_reply(ProviderKind::Openai, 429, Some("2"), "{}", &p).unwrap_err();
        assert!(e.retryable);
        assert_eq!(e.retry_after_ms, Some(2000));
        assert!(
            parse_http_reply(ProviderKind::Openai, 503, None, "down", &p)
                .unwrap_err()
                .retryable
        );
        let e = parse_http_reply(
            ProviderKind::Openai,
            401,
            None,
            r#"{"error":{"message":"bad key"}}"#,
            &p,
        )
        .unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("bad key"));
        for junk in [
            "not json",
            "{\"choices\":[]}",
            "{\"choices\":[{\"message\":{}}]}",
        ] {
            let e = parse_http_reply(ProviderKind::Openai, 200, None, junk, &p).unwrap_err();
            assert!(!e.retryable, "{junk}");
        }
    }

    #[test]
    fn backoff_grows_is_jittered_capped_and_honours_retry_after() {
        assert_eq!(backoff_ms(1, 0.999_999, None), 499);
        assert_eq!(backoff_ms(2, 0.5, None), 500);
        assert_eq!(backoff_ms(30, 0.999_999, None), BACKOFF_CAP_MS - 1);
        assert_eq!(backoff_ms(1, 0.0, Some(1500)), 1500);
        assert_eq!(backoff_ms(1, 0.0, Some(60_000)), BACKOFF_CAP_MS);
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_closes_on_success() {
        let mut b = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            b.record(false, 1000);
            assert!(b.allows(1000));
        }
        b.record(false, 1000);
        assert!(!b.allows(1000 + BREAKER_OPEN_MS - 1));
        assert!(b.allows(1000 + BREAKER_OPEN_MS));
        b.record(true, 2000);
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn costs_are_counted_in_millionths_of_a_dollar() {
        let mut p = ProviderConfig::builtin();
        assert_eq!(p.cost_micros(1000, 1000), 0);
        p.price_in = 0.5;
        p.price_out = 1.5;
        assert_eq!(p.cost_micros(1_000_000, 1_000), 501_500);
    }
}
