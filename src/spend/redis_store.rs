//! The queue store on a real Redis server (feature `servers`).
//!
//! * The queue is a Redis **list** (`RPUSH` to push, `LRANGE` + `LTRIM` or
//!   `LPOP count` to drain), as the documented design has it.
//! * The lease lock is one key set with `SET key value NX PX ttl`, whose
//!   value names the holder: `"<token>:<owner>"`. The fencing token comes
//!   from a counter key raised in the same Lua script, so a grant and its
//!   token are atomic. Release (`DEL`) and renewal (`PEXPIRE`) are Lua
//!   scripts that act only when the key still holds the caller's token:
//!   nobody releases or extends a lease that expired and went to another.
//!   The expiry is judged by the Redis server's clock, never the caller's.
//! * The fixed design's in-flight lists are one list per batch
//!   (`<queue>:inflight:<batch>`) plus a sorted set indexing them; a Lua
//!   script moves up to `max` items from the queue into a batch's list
//!   atomically (what `LMOVE` does for one item).
//! * Standalone Redis: the in-flight scripts build list names from their
//!   arguments, so a Redis Cluster would need hash tags in the prefix.
//! * An operation that times out or loses its connection may still have
//!   been applied (as with any Redis client): a push then counts twice,
//!   a lease grant waits out its TTL.
//! * Connections come from a `deadpool-redis` pool of `max_connections`
//!   taken **without waiting**: when every connection is in use the
//!   operation fails at once with [`StoreError::NoConnection`] ("no
//!   connection available"), the failure incident 002 reports. The caller
//!   keeps its data and tries again later.
//!
//! Crates: `redis` (redis-rs, the maintained Redis client for Rust, with its
//! tokio support and `Script` for Lua) and `deadpool-redis` (the pool most
//! used with it: a fixed `max_size`, and a zero wait timeout gives a
//! non-blocking `try_acquire`, exactly the "no connection available"
//! behaviour to reproduce). `bb8-redis` has no non-blocking get.

use super::queue::{Lease, QueueStore, StoreError};
use super::{Entity, Item, ItemId, RowKey, Rows};
use crate::BoxFuture;
use deadpool_redis::{Pool, PoolError, Runtime, Timeouts};
use redis::Script;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a store lives and how many connections it may use.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Server URL, e.g. `redis://127.0.0.1:6379/`. Default: the
    /// `FAULTLINE_REDIS_URL` variable, else [`REDIS_URL_DEFAULT`].
    pub url: String,
    /// Prefix of every key (isolates deployments and tests). Default
    /// `"faultline:"`.
    pub prefix: String,
    /// The queue's name under the prefix. Default `"spend_update_queue"`
    /// (the daily spend queue is `"daily_spend_update_queue"`).
    pub queue: String,
    /// The lease key's name under the prefix. Default
    /// [`super::LEASE_NAME`].
    pub lease: String,
    /// Connections of this store's pool at most. Default 10.
    pub max_connections: usize,
    /// Items the queue holds at most (a push beyond is refused). Default
    /// 100,000.
    pub items_max: usize,
    /// How long one operation may take before it fails (a hung server is an
    /// error, not a hang). Default 5,000 ms.
    pub op_timeout_ms: u64,
}

/// `SCAN` rounds of [`RedisQueueStore::delete_prefix`] at most.
pub const SCAN_ROUNDS_MAX: usize = 10_000;

/// The local server every project machine runs.
pub const REDIS_URL_DEFAULT: &str = "redis://127.0.0.1:6379/";

/// The Redis URL: `FAULTLINE_REDIS_URL`, else [`REDIS_URL_DEFAULT`].
pub fn redis_url_from_env() -> String {
    std::env::var("FAULTLINE_REDIS_URL").unwrap_or_else(|_| REDIS_URL_DEFAULT.to_string())
}

impl RedisConfig {
    /// The defaults (see each field).
    pub fn new() -> Self {
        RedisConfig {
            url: redis_url_from_env(),
            prefix: "faultline:".into(),
            queue: "spend_update_queue".into(),
            lease: super::LEASE_NAME.into(),
            max_connections: 10,
            items_max: 100_000,
            op_timeout_ms: 5_000,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes the lease if free: `SET NX PX` with the next fencing token.
const ACQUIRE: &str = r"
local t = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if not redis.call('SET', KEYS[1], t .. ':' .. ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
redis.call('SET', KEYS[2], t)
return t";

/// Deletes the lease only if it still holds token ARGV[1].
const RELEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0";

/// Extends the lease to ARGV[2] ms only if it still holds token ARGV[1].
const RENEW: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Pushes ARGV[2] unless the queue holds ARGV[1] items already.
const PUSH: &str = r"
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then return -1 end
return redis.call('RPUSH', KEYS[1], ARGV[2])";

/// Moves up to ARGV[2] items from the queue (KEYS[1]) to the in-flight list
/// KEYS[2] of batch ARGV[1], indexed in KEYS[3]; returns that list.
const MOVE: &str = r"
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for i = 1, #items do redis.call('RPUSH', KEYS[2], items[i]) end
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[1])
end
return redis.call('LRANGE', KEYS[2], 0, -1)";

/// Up to ARGV[1] in-flight lists, lowest batch first: {batch, items}...
const INFLIGHT: &str = r"
local out = {}
for _, b in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  out[#out + 1] = {b, redis.call('LRANGE', ARGV[2] .. b, 0, -1)}
end
return out";

/// The queue store on a Redis server; clones share the pool.
#[derive(Clone)]
pub struct RedisQueueStore {
    pool: Pool,
    cfg: RedisConfig,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl RedisQueueStore {
    /// A store on `cfg.url` with a pool of `cfg.max_connections`. Connects
    /// lazily: a server that is down shows at the first operation.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the URL or pool settings are invalid.
    pub fn new(cfg: RedisConfig) -> Result<Self, StoreError> {
        let mut pool_cfg = deadpool_redis::Config::from_url(cfg.url.clone());
        let mut p = deadpool_redis::PoolConfig::new(cfg.max_connections.max(1));
        p.timeouts.create = Some(Duration::from_millis(cfg.op_timeout_ms));
        p.timeouts.recycle = Some(Duration::from_millis(cfg.op_timeout_ms));
        pool_cfg.pool = Some(p);
        let pool = pool_cfg.create_pool(Some(Runtime::Tokio1)).map_err(io)?;
        Ok(RedisQueueStore { pool, cfg })
    }

    /// Its settings.
    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    /// Connections in use now.
    pub fn in_use(&self) -> usize {
        let s = self.pool.status();
        s.size.saturating_sub(s.available)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.cfg.prefix)
    }

    fn queue_key(&self) -> String {
        self.key(&self.cfg.queue)
    }

    fn lease_key(&self) -> String {
        self.key(&self.cfg.lease)
    }

    fn token_key(&self) -> String {
        self.key(&format!("{}:token", self.cfg.lease))
    }

    fn inflight_index(&self) -> String {
        self.key(&format!("{}:inflight", self.cfg.queue))
    }

    fn inflight_key(&self, batch: u64) -> String {
        format!("{}:{batch}", self.inflight_index())
    }

    /// Runs `f` on a pooled connection taken without waiting, within the
    /// operation timeout.
    fn op<T, F, Fut>(&self, f: F) -> BoxFuture<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_redis::Connection, RedisQueueStore) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = redis::RedisResult<T>> + Send,
    {
        let me = self.clone();
        Box::pin(async move {
            let now = Timeouts {
                wait: Some(Duration::ZERO),
                ..me.pool.timeouts()
            };
            let conn = match me.pool.timeout_get(&now).await {
                Ok(c) => c,
                Err(PoolError::Timeout(deadpool_redis::TimeoutType::Wait)) => {
                    return Err(StoreError::NoConnection {
                        connections_max: me.cfg.max_connections,
                    })
                }
                Err(e) => return Err(io(e)),
            };
            let limit = Duration::from_millis(me.cfg.op_timeout_ms);
            match tokio::time::timeout(limit, f(conn, me)).await {
                Ok(r) => r.map_err(io),
                Err(_) => Err(StoreError::Io("redis operation timed out".into())),
            }
        })
    }

    /// Deletes every key under this store's prefix (test cleanup), found
    /// with `SCAN` (never the blocking `KEYS`), at most [`SCAN_ROUNDS_MAX`]
    /// rounds of 1,000.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn delete_prefix(&self) -> BoxFuture<Result<usize, StoreError>> {
        let pattern = format!("{}*", self.cfg.prefix);
        self.op(move |mut c, _| async move {
            let (mut cursor, mut deleted) = (0_u64, 0_usize);
            for _ in 0..SCAN_ROUNDS_MAX {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000)
                    .query_async(&mut c)
                    .await?;
                if !keys.is_empty() {
                    let n: usize = redis::cmd("DEL").arg(&keys).query_async(&mut c).await?;
                    deleted += n;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            Ok(deleted)
        })
    }

    /// Extends the lease granted with `token` to `ttl_ms` from now (server
    /// time), only if it still holds that token. Returns whether it did.
    ///
    /// # Errors
    /// [`StoreError`]; the lease is unchanged.
    pub fn lease_renew_ms(&self, token: u64, ttl_ms: u64) -> BoxFuture<Result<bool, StoreError>> {
        self.op(move |mut c, me| async move {
            let n: i64 = Script::new(RENEW)
                .key(me.lease_key())
                .arg(token)
                .arg(ttl_ms.max(1))
                .invoke_async(&mut c)
                .await?;
            Ok(n == 1)
        })
    }
}

/// One item as stored: `{"i":instance,"s":seq,"r":[[entity,id,"amount"]..]}`
/// (amounts as decimal strings: JSON numbers lose `u128` precision in most
/// readers).
pub fn encode_item(item: &Item) -> String {
    let rows: Vec<serde_json::Value> = item
        .rows
        .iter()
        .map(|(k, v)| serde_json::json!([k.entity.name(), k.id, v.to_string()]))
        .collect();
    serde_json::json!({"i": item.id.instance, "s": item.id.seq, "r": rows}).to_string()
}

/// Parses [`encode_item`]'s form.
///
/// # Errors
/// [`StoreError::Io`] naming what is malformed.
pub fn decode_item(text: &str) -> Result<Item, StoreError> {
    let bad = || StoreError::Io(format!("malformed queue item: {text}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    let instance = v["i"].as_u64().and_then(|i| u32::try_from(i).ok());
    let seq = v["s"].as_u64();
    let (Some(instance), Some(seq)) = (instance, seq) else {
        return Err(bad());
    };
    let mut rows = Rows::new();
    for r in v["r"].as_array().ok_or_else(bad)? {
        let entity = r[0].as_str().and_then(Entity::from_name).ok_or_else(bad)?;
        let id = r[1].as_str().ok_or_else(bad)?;
        let amount: u128 = r[2].as_str().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        rows.insert(RowKey::new(entity, id), amount);
    }
    Ok(Item {
        id: ItemId { instance, seq },
        rows,
    })
}

fn decode_all(texts: &[String]) -> Result<Vec<Item>, StoreError> {
    texts.iter().map(|t| decode_item(t)).collect()
}

/// Parses a lease value `"<token>:<owner>"`.
fn parse_lease(value: &str, expires_ms: u64) -> Option<Lease> {
    let (token, owner) = value.split_once(':')?;
    Some(Lease {
        owner: owner.to_string(),
        token: token.parse().ok()?,
        expires_ms,
    })
}

impl QueueStore for RedisQueueStore {
    /// `now_ms` only dates the returned lease: Redis judges the expiry on
    /// its own clock (`PX`), so a caller's skewed clock changes nothing.
    fn lease_acquire(
        &self,
        owner: String,
        now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        self.op(move |mut c, me| async move {
            let token: Option<u64> = Script::new(ACQUIRE)
                .key(me.lease_key())
                .key(me.token_key())
                .arg(&owner)
                .arg(ttl_ms.max(1))
                .invoke_async(&mut c)
                .await?;
            Ok(token.map(|token| Lease {
                owner,
                token,
                expires_ms: now_ms.saturating_add(ttl_ms),
            }))
        })
    }

    fn lease_release(&self, token: u64) -> BoxFuture<Result<bool, StoreError>> {
        self.op(move |mut c, me| async move {
            let n: i64 = Script::new(RELEASE)
                .key(me.lease_key())
                .arg(token)
                .invoke_async(&mut c)
                .await?;
            Ok(n == 1)
        })
    }

    fn lease_renew(
        &self,
        token: u64,
        _now_ms: u64,
        ttl_ms: u64,
    ) -> BoxFuture<Result<bool, StoreError>> {
        self.lease_renew_ms(token, ttl_ms)
    }

    /// The lease with its expiry in the server's time (`TIME` + `PTTL`).
    fn lease_holder(&self) -> BoxFuture<Result<Option<Lease>, StoreError>> {
        self.op(move |mut c, me| async move {
            let key = me.lease_key();
            let (value, pttl, time): (Option<String>, i64, (u64, u64)) = redis::pipe()
                .get(&key)
                .pttl(&key)
                .cmd("TIME")
                .query_async(&mut c)
                .await?;
            let now_ms = time.0 * 1_000 + time.1 / 1_000;
            let expires_ms = now_ms.saturating_add(u64::try_from(pttl).unwrap_or(0));
            Ok(value.and_then(|v| parse_lease(&v, expires_ms)))
        })
    }

    fn push(&self, item: Item) -> BoxFuture<Result<(), StoreError>> {
        let text = encode_item(&item);
        let items_max = self.cfg.items_max;
        let pushed = self.op(move |mut c, me| async move {
            let n: i64 = Script::new(PUSH)
                .key(me.queue_key())
                .arg(items_max)
                .arg(text)
                .invoke_async(&mut c)
                .await?;
            Ok(n)
        });
        Box::pin(async move {
            match pushed.await? {
                -1 => Err(StoreError::QueueFull { items_max }),
                _ => Ok(()),
            }
        })
    }

    fn read(&self, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        let texts = self.op(move |mut c, me| async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let texts: Vec<String> = redis::cmd("LRANGE")
                .arg(me.queue_key())
                .arg(0)
                .arg(max - 1)
                .query_async(&mut c)
                .await?;
            Ok(texts)
        });
        decoded(texts)
    }

    fn trim(&self, _owner: String, n: usize) -> BoxFuture<Result<(), StoreError>> {
        self.op(move |mut c, me| async move {
            redis::cmd("LTRIM")
                .arg(me.queue_key())
                .arg(n)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
    }

    fn pop(&self, _owner: String, max: usize) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        let texts = self.op(move |mut c, me| async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let texts: Option<Vec<String>> = redis::cmd("LPOP")
                .arg(me.queue_key())
                .arg(max)
                .query_async(&mut c)
                .await?;
            Ok(texts.unwrap_or_default())
        });
        decoded(texts)
    }

    fn move_to_inflight(
        &self,
        _owner: String,
        batch: u64,
        max: usize,
    ) -> BoxFuture<Result<Vec<Item>, StoreError>> {
        let texts = self.op(move |mut c, me| async move {
            Script::new(MOVE)
                .key(me.queue_key())
                .key(me.inflight_key(batch))
                .key(me.inflight_index())
                .arg(batch)
                .arg(max)
                .invoke_async(&mut c)
                .await
        });
        decoded(texts)
    }

    fn inflight(&self, max: usize) -> BoxFuture<Result<BTreeMap<u64, Vec<Item>>, StoreError>> {
        let lists = self.op(move |mut c, me| async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let lists: Vec<(u64, Vec<String>)> = Script::new(INFLIGHT)
                .key(me.inflight_index())
                .arg(max)
                .arg(format!("{}:", me.inflight_index()))
                .invoke_async(&mut c)
                .await?;
            Ok(lists)
        });
        Box::pin(async move {
            let mut out = BTreeMap::new();
            for (batch, texts) in lists.await? {
                out.insert(batch, decode_all(&texts)?);
            }
            Ok(out)
        })
    }

    fn delete_inflight(&self, batch: u64) -> BoxFuture<Result<(), StoreError>> {
        self.op(move |mut c, me| async move {
            redis::pipe()
                .atomic()
                .del(me.inflight_key(batch))
                .zrem(me.inflight_index(), batch)
                .query_async(&mut c)
                .await
        })
    }

    fn queue_len(&self) -> BoxFuture<Result<usize, StoreError>> {
        self.op(move |mut c, me| async move {
            redis::cmd("LLEN")
                .arg(me.queue_key())
                .query_async(&mut c)
                .await
        })
    }
}

fn decoded(
    texts: BoxFuture<Result<Vec<String>, StoreError>>,
) -> BoxFuture<Result<Vec<Item>, StoreError>> {
    Box::pin(async move { decode_all(&texts.await?) })
}

impl std::fmt::Debug for RedisQueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueStore")
            .field("prefix", &self.cfg.prefix)
            .field("queue", &self.cfg.queue)
            .field("max_connections", &self.cfg.max_connections)
            .finish()
    }
}
