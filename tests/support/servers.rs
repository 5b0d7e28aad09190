//! Shared by the `servers_spend_*` tests: the real-server environment (a
//! Postgres schema and a Redis key prefix unique to the test run, dropped
//! at the end), the SKIPPED rule, deployments of spend instances on the
//! real backends, flusher child processes, and verdicts for the teeth
//! table.
#![allow(dead_code)]

use faultline::clock::{Clock, TokioClock};
use faultline::sched::{Scheduler, TaskHandle, TokioScheduler};
use faultline::spend::pg_ledger::{PgConfig, PgLedger};
use faultline::spend::redis_store::{RedisConfig, RedisQueueStore};
use faultline::spend::{
    aggregate, Batch, CommitOutcome, ConnPool, Entity, Increment, Ledger, LedgerError, Metrics,
    Rows, SpendConfig, SpendDeps, SpendInstance, Variant,
};
use faultline::sync::{Arc, DynArc};
use faultline::BoxFuture;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Once, OnceLock};
use std::time::Duration;

/// How to get servers when they are missing.
pub const START_HINT: &str = "start them with `docker compose up -d` at the repo root \
    (docker-compose.yml), or point FAULTLINE_REDIS_URL / FAULTLINE_POSTGRES_URL at running servers";

/// Connections of the instance-side admission pool: large, so the real
/// Redis pool (`RedisConfig::max_connections`) is the limit that bites.
pub const ADMISSION_CONNECTIONS: usize = 1_024;

/// A multi-threaded tokio runtime (2 workers: the machine's cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `fut` on `rt`, failing (not hanging) after `secs`.
pub fn run<F: Future>(rt: &tokio::runtime::Runtime, secs: u64, what: &str, fut: F) -> F::Output {
    rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Ok(out) => out,
            Err(_) => {
                panic!("{what}: timed out after {secs} s (a bug shows as a failure, not a hang)")
            }
        }
    })
}

/// A test run's own Postgres schema and Redis key prefix.
pub struct Env {
    /// The schema.
    pub schema: String,
    /// The key prefix (ends with `:`).
    pub prefix: String,
    owner: bool,
}

async fn servers_up() -> Result<(), String> {
    let limit = Duration::from_secs(3);
    let store = RedisQueueStore::new(RedisConfig::new()).map_err(|e| e.to_string())?;
    use faultline::spend::QueueStore;
    match tokio::time::timeout(limit, store.queue_len()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(format!(
                "Redis at {} is not reachable ({e})",
                store.config().url
            ))
        }
        Err(_) => return Err(format!("Redis at {} did not answer", store.config().url)),
    }
    let pg = PgLedger::new(PgConfig::new()).map_err(|e| e.to_string())?;
    let url = pg.config().url.clone();
    match tokio::time::timeout(limit, pg.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("Postgres at {url} is not reachable ({e})")),
        Err(_) => Err(format!("Postgres at {url} did not answer")),
    }
}

fn unique(group: &str) -> String {
    // allow-world: a name unique across runs (a leftover of a crashed run
    // must never be reused), not a time the code under test reads
    #[allow(clippy::disallowed_methods)]
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("fl_{tag}_{}_{ns}", std::process::id())
}

impl Env {
    /// The environment of test group `group`, or `None` (after printing one
    /// `SKIPPED:` line) when the servers are not there.
    ///
    /// # Panics
    /// When the servers are missing and `FAULTLINE_REQUIRE_SERVERS=1` (CI).
    pub fn new(group: &str) -> Option<Env> {
        static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
        static SKIP_LINE: Once = Once::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        if let Err(why) = PROBED.get_or_init(|| rt.block_on(servers_up())) {
            let required = std::env::var("FAULTLINE_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{group}: FAULTLINE_REQUIRE_SERVERS=1 but {why}; {START_HINT}"
            );
            // Straight to stderr, past the test harness's output capture:
            // the one line a user sees for this group.
            SKIP_LINE.call_once(|| {
                let line = format!("SKIPPED: {group}: {why}; {START_HINT}\n");
                let _ = std::io::stderr().write_all(line.as_bytes());
            });
            return None;
        }
        let name = unique(group);
        let env = Env {
            prefix: format!("{name}:"),
            schema: name,
            owner: true,
        };
        let created = rt.block_on(async {
            let limit = Duration::from_secs(30);
            tokio::time::timeout(limit, env.pg("", 1).create_tables()).await
        });
        assert!(
            matches!(created, Ok(Ok(()))),
            "{group}: creating schema {} failed: {created:?}",
            env.schema
        );
        Some(env)
    }

    /// The environment a parent passed to this child process.
    pub fn from_child() -> Option<Env> {
        Some(Env {
            schema: std::env::var("FAULTLINE_REALSRV_SCHEMA").ok()?,
            prefix: std::env::var("FAULTLINE_REALSRV_PREFIX").ok()?,
            owner: false,
        })
    }

    /// The variables that hand this environment to a child.
    pub fn child_vars(&self) -> [(&'static str, String); 2] {
        [
            ("FAULTLINE_REALSRV_SCHEMA", self.schema.clone()),
            ("FAULTLINE_REALSRV_PREFIX", self.prefix.clone()),
        ]
    }

    /// A ledger on tables `<tag>spend`, `<tag>flushed_batches`, ... of
    /// this run's schema (`tag`: `[a-z0-9_]`).
    pub fn pg(&self, tag: &str, max_connections: usize) -> PgLedger {
        PgLedger::new(self.pg_config(tag, max_connections)).expect("a Postgres config")
    }

    /// The config [`Env::pg`] uses.
    pub fn pg_config(&self, tag: &str, max_connections: usize) -> PgConfig {
        let mut cfg = PgConfig::new();
        cfg.schema = self.schema.clone();
        cfg.prefix = tag.to_string();
        cfg.max_connections = max_connections;
        cfg.lock_timeout_ms = 20_000;
        cfg
    }

    /// A store whose keys are `<prefix><tag>:<name>`, queue `queue`.
    pub fn redis(&self, tag: &str, queue: &str, max_connections: usize) -> RedisQueueStore {
        let mut cfg = RedisConfig::new();
        cfg.prefix = format!("{}{tag}:", self.prefix);
        cfg.queue = queue.to_string();
        cfg.max_connections = max_connections;
        RedisQueueStore::new(cfg).expect("a Redis config")
    }
}

impl Drop for Env {
    /// Drops the schema and every key under the prefix.
    fn drop(&mut self) {
        if !self.owner || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let ledger = self.pg("", 1);
        let store = self.redis("", "spend_update_queue", 1);
        let store = RedisQueueStore::new(RedisConfig {
            prefix: self.prefix.clone(),
            ..store.config().clone()
        });
        rt.block_on(async {
            let limit = Duration::from_secs(10);
            let dropped = tokio::time::timeout(limit, ledger.drop_schema()).await;
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("note: schema {} not dropped: {dropped:?}", self.schema);
            }
            if let Ok(store) = store {
                let _ = tokio::time::timeout(limit, store.delete_prefix()).await;
            }
        });
    }
}

/// One request's spend: key `k` (8 keys over 4 users in 3 teams).
pub fn increment(k: u64, amount: u64) -> Increment {
    let key = k % 8;
    let user = key % 4;
    Increment {
        api_key: format!("sk-{key}"),
        user: format!("u{user}"),
        team: format!("t{}", user % 3),
        amount,
    }
}

/// What `incs` add up to.
pub fn sum(incs: &[Increment]) -> Rows {
    aggregate(incs).expect("no overflow")
}

/// Spend instances of one deployment on the real servers.
pub struct Deployment {
    /// The instances, `i0..`.
    pub instances: Vec<Arc<SpendInstance>>,
    /// Their shared metrics.
    pub metrics: Arc<Metrics>,
    /// The ledger.
    pub ledger: PgLedger,
    /// Each instance's own Redis store (its own pool).
    pub stores: Vec<RedisQueueStore>,
}

/// How to build a deployment.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The flush design.
    pub variant: Variant,
    /// Instances.
    pub instances: u32,
    /// Lease time to live.
    pub ttl_ms: u64,
    /// Each instance's Redis pool size.
    pub redis_connections: usize,
    /// Postgres connections of the (shared) ledger pool.
    pub pg_connections: usize,
    /// Key and table tag of this deployment inside the run's environment.
    pub tag: String,
    /// Table tag when it differs from `tag` (the daily pipeline shares the
    /// Redis prefix, and so the lock, but has its own tables).
    pub pg_tag: Option<String>,
    /// Queue name.
    pub queue: String,
    /// Postgres' `deadlock_timeout` (`None`: the server's).
    pub deadlock_timeout_ms: Option<u64>,
    /// The test-only flaw: refused pushes forget their aggregates.
    pub forget_refused: bool,
}

impl Setup {
    /// `instances` instances of `variant` under `tag`, a sized pool.
    pub fn new(variant: Variant, instances: u32, tag: &str) -> Self {
        Setup {
            variant,
            instances,
            ttl_ms: 1_000,
            redis_connections: 4,
            pg_connections: 16,
            tag: tag.to_string(),
            pg_tag: None,
            queue: "spend_update_queue".into(),
            deadlock_timeout_ms: None,
            forget_refused: false,
        }
    }
}

/// Builds the deployment (and its tables) of `setup` in `env`.
pub async fn deploy(env: &Env, setup: &Setup) -> Deployment {
    deploy_with(env, setup, |l| DynArc::new(l)).await
}

/// [`deploy`] with the ledger wrapped by `wrap` (e.g. a pausing ledger).
pub async fn deploy_with(
    env: &Env,
    setup: &Setup,
    wrap: impl Fn(PgLedger) -> DynArc<dyn Ledger>,
) -> Deployment {
    let pg_tag = setup.pg_tag.as_deref().unwrap_or(&setup.tag);
    let mut pg = env.pg_config(pg_tag, setup.pg_connections);
    pg.deadlock_timeout_ms = setup.deadlock_timeout_ms;
    let ledger = PgLedger::new(pg).expect("a Postgres config");
    ledger.create_tables().await.expect("create the tables");
    let metrics = Arc::new(Metrics::default());
    let mut cfg = SpendConfig::new(setup.variant);
    cfg.lease_ttl_ms = setup.ttl_ms;
    let clock: DynArc<dyn Clock> = DynArc::new(TokioClock::new());
    let mut instances = Vec::new();
    let mut stores = Vec::new();
    for id in 0..setup.instances {
        let store = env.redis(&setup.tag, &setup.queue, setup.redis_connections);
        let deps = SpendDeps {
            store: DynArc::new(store.clone()),
            ledger: wrap(ledger.clone()),
            pool: Arc::new(ConnPool::new(ADMISSION_CONNECTIONS)),
            clock: DynArc::clone(&clock),
            metrics: Arc::clone(&metrics),
        };
        let mut inst = SpendInstance::new(cfg, id, 0, deps);
        if setup.forget_refused {
            inst = inst.forgetting_refused_pushes();
        }
        instances.push(Arc::new(inst));
        stores.push(store);
    }
    Deployment {
        instances,
        metrics,
        ledger,
        stores,
    }
}

/// Starts `fut` as a task (through the world's scheduler).
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> TaskHandle {
    TokioScheduler.spawn("test", Box::pin(fut))
}

/// A ledger that announces each commit on stdout (`@@READ-DONE <items>`) and
/// waits `pause_ms` before it begins the transaction: the window in which
/// a parent stops (SIGSTOP) or kills (SIGKILL) this flusher between
/// reading the queue and committing. It holds no row lock then.
pub struct AnnouncingLedger {
    /// The real ledger.
    pub inner: PgLedger,
    /// The wait before the transaction.
    pub pause_ms: u64,
    /// Time.
    pub clock: TokioClock,
}

impl Ledger for AnnouncingLedger {
    fn commit(&self, batch: Batch) -> BoxFuture<Result<CommitOutcome, LedgerError>> {
        let inner = self.inner.clone();
        let wait = self.clock.sleep(Duration::from_millis(self.pause_ms));
        Box::pin(async move {
            say(&format!(
                "READ-DONE {} items, batch {:?}",
                batch.items.len(),
                batch.batch_id
            ));
            wait.await;
            let out = inner.commit(batch).await;
            say(&format!("COMMITTED {out:?}"));
            out
        })
    }

    fn totals(&self) -> BoxFuture<Result<Rows, LedgerError>> {
        self.inner.totals()
    }
}

/// Prints one line to stdout at once (a parent is reading it), starting
/// with a newline and `@@` (the test harness may have printed half a line).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n@@{line}");
    let _ = out.flush();
}

/// The flusher child's settings, passed in variables.
pub const CHILD_VARIANT: &str = "FAULTLINE_REALSRV_VARIANT";
/// The child's deployment tag.
pub const CHILD_TAG: &str = "FAULTLINE_REALSRV_TAG";
/// The child's lease TTL.
pub const CHILD_TTL_MS: &str = "FAULTLINE_REALSRV_TTL_MS";
/// The child's pause before each commit.
pub const CHILD_PAUSE_MS: &str = "FAULTLINE_REALSRV_PAUSE_MS";

/// Child body: one flush attempt as instance 0 (`"a"`) of the deployment
/// the parent described, through an [`AnnouncingLedger`]; prints
/// `FLUSHED <result>`. Does nothing outside a child.
pub fn child_flush() {
    let Some(env) = Env::from_child() else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let variant = Variant::from_name(&var(CHILD_VARIANT)).expect("a variant");
    let mut setup = Setup::new(variant, 1, &var(CHILD_TAG));
    setup.ttl_ms = var(CHILD_TTL_MS).parse().expect("a ttl");
    let pause_ms: u64 = var(CHILD_PAUSE_MS).parse().expect("a pause");
    let rt = runtime();
    run(&rt, 60, "child flush", async {
        let d = deploy_with(&env, &setup, |inner| {
            DynArc::new(AnnouncingLedger {
                inner,
                pause_ms,
                clock: TokioClock::new(),
            })
        })
        .await;
        let r = d.instances[0].flush().await;
        say(&format!("FLUSHED {r:?}"));
    });
}

/// A flusher child process and the lines it printed.
pub struct FlusherChild {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl FlusherChild {
    /// Starts the ignored test `name` of this binary (it calls
    /// [`child_flush`]) for `setup` in `env`.
    pub fn start(name: &str, env: &Env, setup: &Setup, pause_ms: u64) -> FlusherChild {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.child_vars())
        .env(CHILD_VARIANT, setup.variant.name())
        .env(CHILD_TAG, &setup.tag)
        .env(CHILD_TTL_MS, setup.ttl_ms.to_string())
        .env(CHILD_PAUSE_MS, pause_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn the flusher child");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        // allow-world: a reader of the child's pipe, so the parent can wait
        // for a line with a deadline (std has no timed pipe read)
        #[allow(clippy::disallowed_methods)]
        let _reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        FlusherChild {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `secs`) for a line `@@<prefix>...` (see [`say`]).
    ///
    /// # Panics
    /// When it does not come.
    pub fn wait_for(&mut self, prefix: &str, secs: u64) -> String {
        let deadline = Duration::from_secs(secs);
        loop {
            match self.lines.recv_timeout(deadline) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(&format!("@@{prefix}")) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "child {}: no line {prefix:?} within {secs} s ({e}); saw {:?}",
                    self.pid(),
                    self.seen
                ),
            }
        }
    }

    /// The first line already read that starts with `prefix`.
    ///
    /// # Panics
    /// When there is none.
    pub fn wait_for_seen(&self, prefix: &str) -> String {
        let found = self
            .seen
            .iter()
            .find(|l| l.starts_with(&format!("@@{prefix}")));
        found
            .unwrap_or_else(|| panic!("child printed no {prefix:?}: {:?}", self.seen))
            .clone()
    }

    /// Sends `signal` (`"STOP"`, `"CONT"`, `"KILL"`) to it.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }

    /// Waits (at most `secs`) for it to exit; kills it if it does not.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        for _ in 0..secs * 20 {
            if let Ok(Some(st)) = self.child.try_wait() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                    self.seen.push(line);
                }
                return st;
            }
            // allow-world: polling a child process's exit
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "child {} did not exit within {secs} s; saw {:?}",
            self.pid(),
            self.seen
        );
    }
}

impl Drop for FlusherChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real-server check's result on one variant.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The teeth table's bug key.
    pub bug: &'static str,
    /// The variant run.
    pub variant: Variant,
    /// Whether the variant is the bug's (caught/missed) or the fix
    /// (holds/fails).
    pub buggy: bool,
    /// The oracle that judged it.
    pub oracle: &'static str,
    /// Runs.
    pub runs: u64,
    /// Runs in which the oracle fired.
    pub fired: u64,
    /// The first firing, described.
    pub example: Option<String>,
}

impl Verdict {
    /// `caught` / `missed` for a buggy variant, `holds` / `fails` for the
    /// fix.
    pub fn value(&self) -> &'static str {
        match (self.buggy, self.fired > 0) {
            (true, true) => "caught",
            (true, false) => "missed",
            (false, false) => "holds",
            (false, true) => "fails",
        }
    }

    /// Prints the verdict line and records it for the teeth table.
    pub fn report(&self) {
        println!(
            "real: {}: {}: {} ({} of {} runs; oracle {}){}",
            self.bug,
            self.variant.name(),
            self.value(),
            self.fired,
            self.runs,
            self.oracle,
            self.example
                .as_ref()
                .map_or(String::new(), |e| format!("; first: {e}"))
        );
        record_verdict(self);
    }
}

/// The teeth table's `real` column: a real-server verdict becomes a check
/// record (checker `real`), earned on this commit, with the oracle that
/// judged it and the runs as its configuration.
pub fn record_verdict(v: &Verdict) {
    use faultline::check::record::Expect;
    let e = if v.buggy {
        Expect::caught("real", v.bug, v.oracle)
    } else {
        Expect::holds("real", v.bug, v.oracle)
    };
    let e = e
        .config("runs", v.runs)
        .config("variant", v.variant.name())
        .config("servers", "redis+postgres");
    let fired = if v.fired > 0 { v.oracle } else { "" };
    let detail = format!(
        "{} of {} runs{}",
        v.fired,
        v.runs,
        v.example
            .as_ref()
            .map_or_else(String::new, |e| format!("; e.g. {e}"))
    );
    e.settle(v.runs, fired, &detail);
}

/// Entity names for messages.
pub fn row_name(k: &faultline::spend::RowKey) -> String {
    let e = match k.entity {
        Entity::ApiKey => "key",
        Entity::User => "user",
        Entity::Team => "team",
    };
    format!("{e}/{}", k.id)
}

/// [`exactly_once`], with the oracle tags of what went wrong:
/// `real:double-apply` when some row holds more than was acknowledged,
/// `real:lost` when some row holds less (both, joined by `+`).
pub fn exactly_once_tagged(got: &Rows, want: &Rows) -> Result<(), (String, String)> {
    exactly_once(got, want).map_err(|msg| {
        let keys: std::collections::BTreeSet<_> = got.keys().chain(want.keys()).collect();
        let (mut more, mut less) = (false, false);
        for k in keys {
            let (g, w) = (
                got.get(k).copied().unwrap_or(0),
                want.get(k).copied().unwrap_or(0),
            );
            more |= g > w;
            less |= g < w;
        }
        let tags: Vec<&str> = [(more, "real:double-apply"), (less, "real:lost")]
            .into_iter()
            .filter_map(|(on, t)| on.then_some(t))
            .collect();
        (tags.join("+"), msg)
    })
}

/// Whether the tags of [`exactly_once_tagged`] name `oracle`.
pub fn names(tags: &str, oracle: &str) -> bool {
    tags.split('+').any(|t| t == oracle)
}

/// The exactly-once oracle: `got` == `want`, or the first difference
/// (`ledger X != acknowledged Y` on a row) and the ratio of totals.
pub fn exactly_once(got: &Rows, want: &Rows) -> Result<(), String> {
    let keys: std::collections::BTreeSet<_> = got.keys().chain(want.keys()).collect();
    let wrong: Vec<_> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    let Some(k) = wrong.first() else {
        return Ok(());
    };
    let total = |r: &Rows| r.values().sum::<u128>();
    Err(format!(
        "exactly-once violated on {} of {} rows (first {}: ledger {} != acknowledged {}); ledger sum {} vs acknowledged {}",
        wrong.len(),
        want.len().max(got.len()),
        row_name(k),
        got.get(*k).copied().unwrap_or(0),
        want.get(*k).copied().unwrap_or(0),
        total(got),
        total(want)
    ))
}
