//! `faultline merge`: the `run --json` outputs of the shards of one sweep,
//! combined into one summary: runs, failures, every failing seed, the
//! first failure and its replay file, and the digest the sweep gives when
//! run whole (every seed's hash, folded in seed order).

use super::run::{hex, RunJson};
use super::{exit, plural, say, CmdResult, EXIT_FAILED, EXIT_OK};
use clap::Args;
use faultline::sim::digest;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Bytes of one shard file read at most.
const SHARD_FILE_BYTES_MAX: u64 = 512 << 20;

#[derive(Args)]
pub(super) struct MergeArgs {
    /// The shards' `run --json` outputs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the merged summary as JSON.
    #[arg(long)]
    json: bool,
}

fn read(path: &PathBuf) -> Result<RunJson, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > SHARD_FILE_BYTES_MAX {
        return Err(format!(
            "{}: {len} bytes is not a shard summary",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a `run --json` output: {e}", path.display()))
}

/// Checks the shards belong to one sweep and together hold each of its
/// seeds exactly once.
fn check_shards(shards: &[RunJson]) -> Result<(), String> {
    let first = &shards[0];
    for s in shards {
        if (&s.scenario, &s.variant, &s.policy, &s.range)
            != (&first.scenario, &first.variant, &first.policy, &first.range)
        {
            return Err(format!(
                "shards of different sweeps: {} {} {} {} vs {} {} {} {}",
                first.scenario,
                first.variant,
                first.policy,
                first.range,
                s.scenario,
                s.variant,
                s.policy,
                s.range
            ));
        }
    }
    let count = |s: &str| {
        s.split_once('/')
            .map(|(_, n)| n.to_string())
            .unwrap_or_default()
    };
    let n = count(&first.shard);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for s in shards {
        if count(&s.shard) != n {
            return Err(format!("shard {} of a {n}-way split", s.shard));
        }
        *seen.entry(s.shard.as_str()).or_default() += 1;
    }
    if let Some((dup, _)) = seen.iter().find(|(_, &k)| k > 1) {
        return Err(format!("shard {dup} given twice"));
    }
    let total: usize = n.parse().unwrap_or(0);
    if seen.len() != total {
        return Err(format!(
            "{} of {total} shards given: the merged digest would not be the sweep's",
            seen.len()
        ));
    }
    Ok(())
}

pub(super) fn cmd(args: &MergeArgs) -> CmdResult {
    let shards: Vec<RunJson> = args.files.iter().map(read).collect::<Result<_, _>>()?;
    check_shards(&shards)?;
    let mut hashes: Vec<(u64, u64)> = Vec::new();
    for s in &shards {
        for (seed, h) in &s.hashes {
            let v = u64::from_str_radix(h.trim_start_matches("0x"), 16)
                .map_err(|_| format!("bad trace hash {h:?} of seed {seed}"))?;
            hashes.push((*seed, v));
        }
    }
    hashes.sort_unstable();
    let runs: u64 = shards.iter().map(|s| s.runs).sum();
    if hashes.len() as u64 != runs {
        return Err(format!(
            "{runs} runs but {} trace hashes: a shard stopped early (--fail-fast) or was not run with --json",
            hashes.len()
        ));
    }
    let failures: u64 = shards.iter().map(|s| s.failures).sum();
    let mut failing: Vec<u64> = shards
        .iter()
        .flat_map(|s| s.failing_seeds.clone())
        .collect();
    failing.sort_unstable();
    let first = shards
        .iter()
        .filter_map(|s| s.first_failure.as_ref())
        .min_by_key(|f| f.seed);
    let merged = RunJson {
        shard: "1/1".into(),
        runs,
        failures,
        failing_seeds: failing,
        digest: hex(digest(hashes.iter().map(|&(_, h)| h))),
        first_failure: first.cloned(),
        hashes: Vec::new(),
        ..shards[0].clone()
    };
    if args.json {
        say!(
            "{}",
            serde_json::to_string(&merged).map_err(|e| e.to_string())?
        );
    } else {
        say!(
            "{} --variant {} ({}), seeds {}, {} merged: {}, {} failed, digest {}",
            merged.scenario,
            merged.variant,
            merged.policy,
            merged.range,
            plural(shards.len() as u64, "shard", "shards"),
            plural(runs, "run", "runs"),
            failures,
            merged.digest
        );
        if let Some(f) = &merged.first_failure {
            say!(
                "first failing seed {}: {} ({}); replay: {}",
                f.seed,
                f.message,
                f.oracle,
                f.replay.as_deref().unwrap_or("not written")
            );
        }
    }
    Ok(exit(if failures > 0 { EXIT_FAILED } else { EXIT_OK }))
}
