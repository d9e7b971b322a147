//! The Redis counter several instances share: one atomic Lua script counts, for every
//! budget a request spends, the tokens an instance takes (one, or a lease of several).

use std::collections::BTreeMap;
use std::time::Duration;

use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfig, LuaInterface, Options, ReconnectPolicy,
};

use super::REDIS_TIMEOUT;

/// Adds `ARGV[i + 1]` tokens to `KEYS[i]` in a fixed window of `ARGV[1]` ms: the first
/// tokens set the expiry, so the window is the key's lifetime. Also repairs a key left
/// without an expiry, which would never reset. Returns `{count, milliseconds until the
/// window ends}` per key, flattened.
const HIT_SCRIPT: &str = r#"
local results = {}
for index, key in ipairs(KEYS) do
  local tokens = tonumber(ARGV[index + 1])
  local count = redis.call('INCRBY', key, tokens)
  if count == tokens then
    redis.call('PEXPIRE', key, ARGV[1])
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  results[#results + 1] = count
  results[#results + 1] = ttl
end
return results
"#;

/// How long to wait between reconnection attempts after Redis went away.
const RECONNECT_DELAY_MS: u32 = 500;

/// Windows kept in Redis, one key per budget (see [`redis_key`]).
#[derive(Debug)]
pub(super) struct SharedWindows {
    client: Client,
    key_prefix: String,
}

impl SharedWindows {
    /// Parses `url` and starts connecting in the background. An unreachable server is not
    /// an error here: calls fail fast until the client has reconnected.
    pub(super) fn connect(url: &str, key_prefix: &str) -> Result<Self, fred::error::Error> {
        let mut config = RedisConfig::from_url(url)?;
        // Retry the first connection like any later one instead of giving up at startup.
        config.fail_fast = false;
        let client = Builder::from_config(config)
            .with_connection_config(|connection| {
                connection.connection_timeout = REDIS_TIMEOUT;
                connection.internal_command_timeout = REDIS_TIMEOUT;
            })
            .set_policy(ReconnectPolicy::new_constant(0, RECONNECT_DELAY_MS))
            .build()?;
        // The handle is the connection task; it ends with the client.
        drop(client.connect());
        Ok(Self {
            client,
            key_prefix: key_prefix.to_owned(),
        })
    }

    /// The connection, for the read cache to share.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Adds `tokens[i]` to `budget_keys[i]` (`{class}:{subject}`); returns the count after
    /// the addition and the time until the window ends per key, or why Redis could not
    /// answer. One script call on a single server; on a Redis Cluster one per hash slot,
    /// since a script may only touch keys of one slot.
    pub(super) async fn take(
        &self,
        budget_keys: &[String],
        tokens: &[u64],
        window: Duration,
    ) -> Result<Vec<(u64, Duration)>, String> {
        let keys: Vec<String> = budget_keys
            .iter()
            .map(|budget_key| redis_key(&self.key_prefix, budget_key))
            .collect();
        if !self.client.is_clustered() || keys.len() < 2 {
            return self.hit(keys, tokens, window).await;
        }
        let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (index, key) in keys.iter().enumerate() {
            by_slot
                .entry(fred::util::redis_keyslot(key.as_bytes()))
                .or_default()
                .push(index);
        }
        let calls = by_slot.values().map(|indices| {
            let slot_keys = indices.iter().map(|index| keys[*index].clone()).collect();
            let slot_tokens: Vec<u64> = indices.iter().map(|index| tokens[*index]).collect();
            async move { self.hit(slot_keys, &slot_tokens, window).await }
        });
        let answers = futures::future::try_join_all(calls).await?;
        let mut results = vec![(0, Duration::ZERO); keys.len()];
        for (indices, answer) in by_slot.values().zip(answers) {
            for (index, result) in indices.iter().zip(answer) {
                results[*index] = result;
            }
        }
        Ok(results)
    }

    /// One call of [`HIT_SCRIPT`] over `keys`, all of one hash slot on a cluster.
    async fn hit(
        &self,
        keys: Vec<String>,
        tokens: &[u64],
        window: Duration,
    ) -> Result<Vec<(u64, Duration)>, String> {
        let key_count = keys.len();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let mut arguments = Vec::with_capacity(tokens.len() + 1);
        arguments.push(window_ms);
        arguments.extend(
            tokens
                .iter()
                .map(|tokens| i64::try_from(*tokens).unwrap_or(i64::MAX)),
        );
        let client = self.client.with_options(&call_options());
        let call = client.eval::<Vec<i64>, _, _, _>(HIT_SCRIPT, keys, arguments);
        let flattened = within_timeout(call).await?;
        if flattened.len() != key_count * 2 {
            return Err(format!(
                "redis returned {} numbers for {key_count} keys",
                flattened.len()
            ));
        }
        flattened
            .chunks_exact(2)
            .map(|pair| {
                let (count, ttl_ms) = (pair[0], pair[1]);
                let count =
                    u64::try_from(count).map_err(|_| format!("redis returned count {count}"))?;
                let ttl_ms = u64::try_from(ttl_ms).unwrap_or(0);
                Ok((count, Duration::from_millis(ttl_ms)))
            })
            .collect()
    }

    /// Waits at most `timeout` for the first connection; false if it was not made.
    pub(super) async fn wait_until_connected(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.client.wait_for_connect()).await,
            Ok(Ok(()))
        )
    }

    /// Checks that Redis answers.
    pub(super) async fn ping(&self) -> Result<(), String> {
        let client = self.client.with_options(&call_options());
        let call = client.ping::<String>(None);
        within_timeout(call).await.map(drop)
    }
}

/// The Redis key of a budget, e.g. `crmbet:ratelimit:{segment:ip:10.0.0.7}`: the budget
/// (`<class>:<kind>:<subject>`, in braces) is the key's hash tag, so on a Redis
/// Cluster a budget's key lives in one slot whatever the prefix, and keys of different
/// budgets spread over the nodes.
fn redis_key(key_prefix: &str, budget_key: &str) -> String {
    format!("{key_prefix}ratelimit:{{{budget_key}}}")
}

/// Options for every Redis call of the shared state (limits and cache): no queueing while
/// disconnected, no retries, a short timeout — a local count or a cache miss is cheaper than
/// a wait.
pub(crate) fn call_options() -> Options {
    Options {
        fail_fast: true,
        max_attempts: Some(1),
        timeout: Some(REDIS_TIMEOUT),
        ..Options::default()
    }
}

/// Awaits a Redis call for at most [`REDIS_TIMEOUT`] (on top of fred's own timeout, which
/// does not cover every wait inside the client).
pub(crate) async fn within_timeout<T>(
    call: impl Future<Output = Result<T, fred::error::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("redis: {error}")),
        Err(_) => Err(format!(
            "redis did not answer within {} ms",
            REDIS_TIMEOUT.as_millis()
        )),
    }
}
