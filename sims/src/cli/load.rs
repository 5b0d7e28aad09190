//! The load commands of the `faultline` CLI: `run SCENARIO --load FILE`,
//! `load gen | check | stats | from-log`, and `cliff SCENARIO --variant V
//! [--load FILE]`. The format is described in `sims/loads/README.md` and
//! [`faultline::admission::load`].
//!
//! Exit codes as the CLI's: 0 done (every run passed), 1 a run failed an
//! oracle or a checked file is malformed, 2 bad input.

use crate::cliff::{self, CliffSpec, Edge, STEPS_MAX};
use crate::policy::PolicySpec;
use crate::runner::config_for;
use crate::scenario::Scenario;
use crate::scenarios::subtree_load::SubtreeOomLoad;
use crate::seeds::SeedRange;
use clap::{Args, Subcommand, ValueEnum};
use faultline::admission::access_log::{from_access_log, LogConversion};
use faultline::admission::load::{
    bursts, parse_load, poisson, ramp, read_load, to_json_lines, Arrival, ItemBytes, Shape,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Prints a line to stdout; a closed pipe is not worth a panic.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `faultline load ...`.
#[derive(Args)]
pub struct LoadArgs {
    #[command(subcommand)]
    command: LoadCommand,
}

#[derive(Subcommand)]
enum LoadCommand {
    /// Generate a load (Poisson, bursts or a ramp) as JSON lines.
    Gen(GenArgs),
    /// Check a load file: every malformed line with its number.
    Check {
        /// The load file.
        file: PathBuf,
    },
    /// Summarize a load file: arrivals, span, rates, sizes, clients.
    Stats {
        /// The load file.
        file: PathBuf,
    },
    /// Convert a plain access log (`TIMESTAMP PATH BYTES` per line) into a
    /// load.
    FromLog(FromLogArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Arrivals at a constant mean rate.
    Poisson,
    /// Groups of arrivals, one group every --gap-ms.
    Burst,
    /// A rate rising linearly from --rate to --rate-to.
    Ramp,
}

#[derive(Args)]
struct GenArgs {
    /// The load's shape over time.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Requests per second (poisson; ramp: the starting rate).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Ramp: the rate at the end.
    #[arg(long, default_value_t = 100.0)]
    rate_to: f64,
    /// How long the load lasts, ms (poisson, ramp).
    #[arg(long, default_value_t = 60_000)]
    duration_ms: u64,
    /// Burst: how many bursts.
    #[arg(long, default_value_t = 3)]
    bursts: u32,
    /// Burst: requests per burst.
    #[arg(long, default_value_t = 50)]
    per_burst: u32,
    /// Burst: ms from one burst to the next.
    #[arg(long, default_value_t = 10_000)]
    gap_ms: u64,
    /// Burst: each burst's requests spread over this long, ms.
    #[arg(long, default_value_t = 100)]
    spread_ms: u64,
    /// The seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keys: this prefix and the arrival's index.
    #[arg(long, default_value = "subtree/")]
    key_prefix: String,
    /// Chance (per million) that a file exists already.
    #[arg(long, default_value_t = 200_000)]
    exists_ppm: u32,
    /// Items per file, MIN..MAX (inclusive).
    #[arg(long, default_value = "100000..150000", value_parser = parse_span)]
    items: (u64, u64),
    /// The item sizes as the load format writes them, e.g.
    /// '{"uniform": [10000, 500000]}' or '{"mix": [[90, 300], [10, 100000]]}'.
    #[arg(long, default_value = r#"{"mix": [[90, 300], [10, 100000]]}"#, value_parser = parse_item_bytes)]
    item_bytes: ItemBytes,
    /// Client read speed, bytes per second, MIN..MAX (inclusive).
    #[arg(long, default_value = "50000000..500000000", value_parser = parse_span)]
    client_bytes_per_s: (u64, u64),
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct FromLogArgs {
    /// The access log.
    log: PathBuf,
    /// The sizes of every file's items (the log gives only file sizes).
    #[arg(long, default_value = r#"{"mix": [[90, 300], [10, 100000]]}"#, value_parser = parse_item_bytes)]
    item_bytes: ItemBytes,
    /// How fast every client reads, bytes per second.
    #[arg(long, default_value_t = 100_000_000)]
    client_bytes_per_s: u64,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_span(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("'{text}' is not MIN..MAX"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{s}' is not a number"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b {
        return Err(format!("'{text}': MIN is above MAX"));
    }
    Ok((a, b))
}

fn parse_item_bytes(text: &str) -> Result<ItemBytes, String> {
    serde_json::from_str(text).map_err(|e| format!("'{text}' is not an item_bytes value: {e}"))
}

/// Runs `faultline load ...`.
///
/// # Errors
/// A one-line message for bad input (exit 2).
pub fn cmd_load(args: &LoadArgs) -> Result<ExitCode, String> {
    match &args.command {
        LoadCommand::Gen(g) => gen(g),
        LoadCommand::Check { file } => check(file),
        LoadCommand::Stats { file } => stats(file),
        LoadCommand::FromLog(f) => from_log(f),
    }
}

fn write_out(out: Option<&Path>, load: &[Arrival]) -> Result<ExitCode, String> {
    let text = to_json_lines(load);
    match out {
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {} arrivals to {}", load.len(), path.display());
        }
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gen(g: &GenArgs) -> Result<ExitCode, String> {
    let shape = Shape {
        key_prefix: g.key_prefix.clone(),
        exists_ppm: g.exists_ppm.min(1_000_000),
        items_min: g.items.0,
        items_max: g.items.1,
        item_bytes: g.item_bytes.clone(),
        client_bytes_per_s_min: g.client_bytes_per_s.0.max(1),
        client_bytes_per_s_max: g.client_bytes_per_s.1.max(1),
    };
    let load = match g.kind {
        Kind::Poisson => poisson(&shape, g.rate, g.duration_ms, g.seed),
        Kind::Ramp => ramp(&shape, g.rate, g.rate_to, g.duration_ms, g.seed),
        Kind::Burst => bursts(&shape, g.bursts, g.per_burst, g.gap_ms, g.spread_ms, g.seed),
    };
    // What the generator wrote must read back: the same checks as a file.
    parse_load(&to_json_lines(&load)).map_err(|e| format!("generated load: {e}"))?;
    write_out(g.out.as_deref(), &load)
}

fn check(file: &Path) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    match parse_load(&text) {
        Ok(load) => {
            say(&format!("{}: ok, {} arrivals", file.display(), load.len()));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say(&format!("{}: {e}", file.display()));
            Ok(ExitCode::from(1))
        }
    }
}

fn read(file: &Path) -> Result<Vec<Arrival>, String> {
    read_load(file).map_err(|e| format!("{}: {e}", file.display()))
}

/// Min, median and max of `v` (sorted here).
fn spread(mut v: Vec<u64>) -> (u64, u64, u64) {
    v.sort_unstable();
    match (v.first(), v.last()) {
        (Some(&lo), Some(&hi)) => (lo, v[v.len() / 2], hi),
        _ => (0, 0, 0),
    }
}

fn stats(file: &Path) -> Result<ExitCode, String> {
    let load = read(file)?;
    let n = load.len();
    let span_ms = load.last().map_or(0, |a| a.at_ms);
    let mut per_s = std::collections::BTreeMap::new();
    for a in &load {
        *per_s.entry(a.at_ms / 1_000).or_insert(0u64) += 1;
    }
    let peak = per_s.values().copied().max().unwrap_or(0);
    let missing: Vec<&Arrival> = load.iter().filter(|a| !a.exists).collect();
    let created_bytes: u128 = missing
        .iter()
        .map(|a| u128::from(a.file_bytes_estimate()))
        .sum();
    let items = spread(load.iter().map(|a| a.items).collect());
    let item_max = load.iter().map(|a| a.item_bytes.max_bytes()).max();
    let clients = spread(load.iter().map(|a| a.client_bytes_per_s).collect());
    let keys: std::collections::BTreeSet<&str> = load.iter().map(|a| a.key.as_str()).collect();
    say(&format!("{}:", file.display()));
    say(&format!(
        "  arrivals        {n} ({} distinct keys)",
        keys.len()
    ));
    say(&format!("  span            {:.3} s", span_ms as f64 / 1e3));
    say(&format!(
        "  rate            mean {:.2} req/s, peak {peak} req in one second",
        n as f64 * 1_000.0 / span_ms.max(1_000) as f64
    ));
    say(&format!(
        "  existing        {} of {n} ({} to create on demand, about {:.2} GB)",
        n - missing.len(),
        missing.len(),
        created_bytes as f64 / 1e9
    ));
    say(&format!(
        "  items per file  min {}, median {}, max {}",
        items.0, items.1, items.2
    ));
    say(&format!(
        "  item bytes      largest {}",
        item_max.unwrap_or(0)
    ));
    say(&format!(
        "  client bytes/s  min {}, median {}, max {}",
        clients.0, clients.1, clients.2
    ));
    Ok(ExitCode::SUCCESS)
}

fn from_log(f: &FromLogArgs) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&f.log)
        .map_err(|e| format!("cannot read {}: {e}", f.log.display()))?;
    let conv = LogConversion {
        item_bytes: f.item_bytes.clone(),
        client_bytes_per_s: f.client_bytes_per_s,
    };
    let load = from_access_log(&text, &conv).map_err(|e| format!("{}: {e}", f.log.display()))?;
    write_out(f.out.as_deref(), &load)
}

/// The scenario `name` replaying the load file `file`.
///
/// # Errors
/// When the scenario takes no load file, or the file cannot be read.
pub fn loaded(
    scenarios: &[Box<dyn Scenario>],
    name: &str,
    file: &Path,
) -> Result<SubtreeOomLoad, String> {
    let s = crate::find_in(scenarios, name).map_err(|e| e.to_string())?;
    if s.name() != "subtree-oom" {
        return Err(format!(
            "scenario '{}' takes no load file (only subtree-oom does)",
            s.name()
        ));
    }
    Ok(SubtreeOomLoad::new(read(file)?))
}

/// `faultline run SCENARIO --load FILE`: every seed of `range` replays the
/// file. A failure prints the command that reruns it (replay files do not
/// carry a load file, so none is written).
///
/// # Errors
/// Bad input: an unknown scenario or variant, a scenario without loads, an
/// unreadable or malformed file.
pub fn cmd_run_load(
    scenarios: &[Box<dyn Scenario>],
    name: &str,
    variant: &str,
    range: SeedRange,
    policy: PolicySpec,
    file: &Path,
) -> Result<ExitCode, String> {
    let s = loaded(scenarios, name, file)?;
    s.check_variant(variant).map_err(|e| e.to_string())?;
    let (mut failed, mut runs) = (0u64, 0u64);
    for seed in range.start..range.end {
        let cfg = config_for(&s, variant, seed, policy);
        let out = s.run(variant, cfg).map_err(|e| e.to_string())?;
        runs += 1;
        let what = format!(
            "{} --variant {variant} seed {seed} ({policy}) on {}",
            s.name(),
            file.display()
        );
        match &out.failure {
            None => say(&format!(
                "passed: {what}: {:.3} s virtual, peak memory {} B",
                out.virtual_ns as f64 / 1e9,
                out.mem_peak_bytes
            )),
            Some(f) => {
                failed += 1;
                say(&format!("FAILED: {what}: {f}"));
                say(&format!("  oracle: {}", f.oracle()));
                say(&format!(
                    "  rerun:  faultline run {} --load {} --variant {variant} --seed {seed}{}",
                    s.name(),
                    file.display(),
                    policy.cli_flags()
                ));
            }
        }
        if range.len() == 1 {
            say(&format!("  mem_peak_bytes = {}", out.mem_peak_bytes));
            for (k, v) in &out.metrics.values {
                say(&format!("  {k} = {v}"));
            }
        }
    }
    if range.len() > 1 {
        say(&format!("{runs} runs, {failed} failed"));
    }
    Ok(ExitCode::from(u8::from(failed > 0)))
}

/// `faultline cliff ...`.
#[derive(Args)]
pub struct CliffArgs {
    /// The scenario (one with a load axis: subtree-oom, retry-storm).
    scenario: String,
    /// The variant.
    #[arg(long, default_value = crate::FIXED)]
    variant: String,
    /// Scale this load file's rate instead of the scenario's own load
    /// (subtree-oom).
    #[arg(long)]
    load: Option<PathBuf>,
    /// Seeds run at each probed load (all must agree).
    #[arg(long, default_value_t = cliff::PROBE_SEEDS_DEFAULT)]
    seeds: u64,
    /// Bisection steps.
    #[arg(long, default_value_t = cliff::STEPS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=i64::from(STEPS_MAX)))]
    steps: u32,
}

/// Runs `faultline cliff`: for a buggy variant the smallest load at which
/// it fails through its bug's own oracle; for a correct one the largest it
/// holds. Prints the edge as a rate and as the factor of the load.
///
/// # Errors
/// Bad input: an unknown scenario or variant, no load axis, an unreadable
/// load file.
pub fn cmd_cliff(scenarios: &[Box<dyn Scenario>], args: &CliffArgs) -> Result<ExitCode, String> {
    let with_load;
    let s: &dyn Scenario = match &args.load {
        Some(file) => {
            with_load = loaded(scenarios, &args.scenario, file)?;
            &with_load
        }
        None => crate::find_in(scenarios, &args.scenario).map_err(|e| e.to_string())?,
    };
    s.check_variant(&args.variant).map_err(|e| e.to_string())?;
    let spec = CliffSpec {
        seeds: args.seeds.max(1),
        steps: args.steps,
        policy: PolicySpec::Random,
    };
    let holds = s.holds(&args.variant);
    let bug = s.bug(&args.variant);
    let c = if holds {
        cliff::holds_to(s, &args.variant, &spec)
    } else {
        cliff::fails_from(s, &args.variant, bug.as_ref(), &spec)
    }
    .map_err(|e| e.to_string())?;
    let source = args
        .load
        .as_ref()
        .map_or_else(|| "its own load".to_string(), |f| f.display().to_string());
    let verb = if holds { "holds to" } else { "fails from" };
    say(&format!(
        "cliff: {} --variant {} on {source}: {verb} {c}",
        s.name(),
        args.variant
    ));
    let factor = match c.edge {
        Edge::At(x) | Edge::BelowMin(x) | Edge::AboveMax(x) => x,
    };
    say(&format!("factor: {factor:.4}"));
    let probes: Vec<String> = c
        .probes
        .iter()
        .map(|(f, ok)| format!("x{f:.3} {}", if *ok == holds { "holds" } else { "fails" }))
        .collect();
    say(&format!("probes ({} runs): {}", c.runs, probes.join(", ")));
    Ok(ExitCode::SUCCESS)
}
