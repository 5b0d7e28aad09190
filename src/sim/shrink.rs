//! Delta-debugging a failing schedule: turn preemptions and faults back into
//! defaults (chunks first, then one by one) for as long as the run still
//! fails the same way.

use super::policy::Decision;

/// What the shrinker did.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The minimal schedule found (as recorded by its own failing run, so it
    /// replays strictly).
    pub decisions: Vec<Decision>,
    /// Non-default decisions (preemptions, faults, draws) before.
    pub choices_before: usize,
    /// Non-default decisions after.
    pub choices_after: usize,
    /// Candidate runs tried.
    pub attempts: usize,
}

/// Counts the decisions that are not the default.
pub fn choices(decisions: &[Decision]) -> usize {
    decisions.iter().filter(|d| **d != Decision::Auto).count()
}

/// Shrinks `decisions`. `rerun` replays a candidate leniently and returns
/// the decisions that run recorded if it still fails the same way, `None`
/// otherwise. At most `attempts_max` candidates are tried.
pub fn shrink(
    decisions: &[Decision],
    attempts_max: usize,
    mut rerun: impl FnMut(&[Decision]) -> Option<Vec<Decision>>,
) -> Shrunk {
    let mut best = decisions.to_vec();
    let before = choices(&best);
    let mut attempts = 0;
    // Cut the tail first: past the end, a lenient replay takes defaults.
    let mut keep = best.len() / 2;
    while keep > 0 && attempts < attempts_max {
        attempts += 1;
        match rerun(&best[..keep]) {
            Some(rec) => {
                best = rec;
                keep = best.len().min(keep) / 2;
            }
            None => break,
        }
    }
    let mut chunk = choices(&best).div_ceil(2).max(1);
    loop {
        let mut progressed = false;
        let idx: Vec<usize> = (0..best.len())
            .filter(|&i| best[i] != Decision::Auto)
            .collect();
        for group in idx.chunks(chunk) {
            if attempts >= attempts_max {
                break;
            }
            attempts += 1;
            let mut cand = best.clone();
            for &i in group {
                cand[i] = Decision::Auto;
            }
            if let Some(rec) = rerun(&cand) {
                if choices(&rec) < choices(&best) {
                    best = rec;
                    progressed = true;
                    break;
                }
            }
        }
        if attempts >= attempts_max || (!progressed && chunk == 1) {
            break;
        }
        if !progressed {
            chunk = chunk.div_ceil(2);
        }
    }
    Shrunk {
        choices_after: choices(&best),
        decisions: best,
        choices_before: before,
        attempts,
    }
}
