//! Deployment settings as the Worker and the objects read them: a secret or
//! a `[vars]` value, if set and non-empty.

use worker::Env;

pub fn env_var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Whether webhook targets and push endpoints may be `http` or local
/// addresses (`NOTIFY_ALLOW_PRIVATE_URLS=1`: local development and tests).
pub fn allow_private_urls(env: &Env) -> bool {
    env_var(env, "NOTIFY_ALLOW_PRIVATE_URLS").as_deref() == Some("1")
}
