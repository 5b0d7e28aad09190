//! Which shard of a sweep this process runs: `--shard K/N`, else
//! `FAULTLINE_SHARD=K/N`, else the index and count a CI system gives the
//! jobs of a parallel or indexed job, so a job matrix needs no script.

use faultline::check::seeds::Shard;

/// Index/count variable pairs of CI systems, and whether the index is
/// 0-based.
const CI_PAIRS: &[(&str, &str, bool)] = &[
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", false),
    ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", true),
    (
        "BUILDKITE_PARALLEL_JOB",
        "BUILDKITE_PARALLEL_JOB_COUNT",
        true,
    ),
    ("JOB_COMPLETION_INDEX", "FAULTLINE_SHARD_COUNT", true),
];

/// The shard in force and where it came from (`None`: every seed).
///
/// # Errors
/// A message naming the variable when one is set but unusable.
pub fn resolve(flag: Option<Shard>) -> Result<Option<(Shard, String)>, String> {
    if let Some(s) = flag {
        return Ok(Some((s, "--shard".into())));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if let Some(v) = var("FAULTLINE_SHARD") {
        let s = v
            .parse::<Shard>()
            .map_err(|e| format!("FAULTLINE_SHARD={v:?}: {e}"))?;
        return Ok(Some((s, "FAULTLINE_SHARD".into())));
    }
    for &(index, count, zero_based) in CI_PAIRS {
        let (Some(i), Some(n)) = (var(index), var(count)) else {
            continue;
        };
        let num = |k: &str, t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{k}={t:?} is not a number"))
        };
        let (i, n) = (num(index, &i)?, num(count, &n)?);
        let k = if zero_based { i + 1 } else { i };
        let s = format!("{k}/{n}")
            .parse::<Shard>()
            .map_err(|e| format!("{index}/{count}: {e}"))?;
        return Ok(Some((s, format!("{index}/{count}"))));
    }
    Ok(None)
}
