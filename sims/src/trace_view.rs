//! Views of a run's trace for `faultline replay --trace`: the focused
//! view (the tasks the failing oracle names, side by side, one column per
//! task, virtual time at the left) and JSON lines for tools.
//!
//! Which tasks are in focus: the failing oracle's message names *objects*
//! (`segment 3`, `id 17`, `txn 11`: a word, then a number) and sometimes
//! tasks by name. A task is in focus when one of its story lines (the
//! services' `tracing` events) mentions one of those objects, in its text
//! (`segment 3`) or in a field (`seg=3`, `ids=[17, 18]`), or when its name
//! appears in the message, or its label does (`i3` of the task
//! `instance i3`, in `txn 4 (i3)`): those named by label get the first
//! columns. When the message names nothing a story line
//! mentions, every task that logged a story line is in focus.
//!
//! No ANSI codes unless stdout is a terminal and `NO_COLOR` is unset; never
//! a wall-clock time (every time is virtual, since the start of the run).

use faultline::sim::{LineKind, TraceLine, TraceLog};
use std::collections::{BTreeMap, BTreeSet};

/// Width of the focused view when `COLUMNS` does not say.
const WIDTH_DEFAULT: usize = 160;
/// Narrowest task column.
const COLUMN_MIN: usize = 24;
/// Tasks shown side by side at most (the rest are named below the view).
const COLUMNS_MAX: usize = 6;
/// Words that sit between an object's noun and its number ("the active
/// segment is 3").
const LINKING_WORDS: &[&str] = &[
    "is", "was", "are", "were", "now", "the", "a", "an", "to", "of", "at", "but", "first",
];

/// An object the oracle's message names: a noun and a number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    /// The noun, lower case (`segment`).
    pub noun: String,
    /// The number, as written (`3`).
    pub number: String,
}

/// The objects `message` names: each number with the nearest word before
/// it that is not a linking word.
pub fn objects(message: &str) -> BTreeSet<Object> {
    let words: Vec<&str> = message
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = BTreeSet::new();
    for (i, w) in words.iter().enumerate() {
        if !w.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let noun = words[..i].iter().rev().find(|p| {
            p.chars().all(char::is_alphabetic)
                && !LINKING_WORDS.contains(&p.to_lowercase().as_str())
        });
        if let Some(noun) = noun {
            found.insert(Object {
                noun: noun.to_lowercase(),
                number: (*w).to_string(),
            });
        }
    }
    found
}

/// Whether `line` (a story line) mentions `obj`: its text says `noun
/// number`, or a field whose name and the noun share a prefix (`seg` and
/// `segment`, `ids` and `id`) holds the number.
pub fn mentions(line: &TraceLine, obj: &Object) -> bool {
    let text = line.text.to_lowercase();
    let said = format!("{} {}", obj.noun, obj.number);
    if contains_words(&text, &said) {
        return true;
    }
    line.fields.iter().any(|(k, v)| {
        let k = k.to_lowercase();
        let related = k.len() >= 2 && (obj.noun.starts_with(&k) || k.starts_with(&obj.noun));
        related && number_in(v, &obj.number)
    })
}

/// `needle` in `hay` at word boundaries.
fn contains_words(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Whether `value` holds `number` as a whole token (`[17, 18]` holds 17).
fn number_in(value: &str, number: &str) -> bool {
    value
        .split(|c: char| !c.is_alphanumeric())
        .any(|t| t == number)
}

/// The tasks in focus for a failure with this message (see the module
/// docs), oldest first.
pub fn focus_tasks(log: &TraceLog, message: Option<&str>) -> BTreeSet<u64> {
    let stories = || {
        log.lines
            .iter()
            .filter(|l| l.kind == LineKind::Story)
            .filter_map(|l| Some((l.task?, l)))
    };
    let mut tasks = BTreeSet::new();
    if let Some(msg) = message {
        let objs = objects(msg);
        for (task, line) in stories() {
            if objs.iter().any(|o| mentions(line, o)) {
                tasks.insert(task);
            }
        }
        for (&id, t) in &log.tasks {
            let kind = t.name.kind();
            if kind.len() >= 3 && msg.contains(kind) && stories().any(|(s, _)| s == id) {
                tasks.insert(id);
            }
        }
        tasks.extend(named_tasks(log, msg));
    }
    if tasks.is_empty() {
        tasks = stories().map(|(t, _)| t).collect();
    }
    tasks
}

/// The tasks whose label (`i3` of `instance i3`) the message names as a
/// word (`txn 4 (i3)`, `popped by i3#7`): of each label, the tasks that
/// logged a story line, or the oldest one when none did, so every actor
/// the oracle names has a column.
pub fn named_tasks(log: &TraceLog, message: &str) -> BTreeSet<u64> {
    let msg = message.to_lowercase();
    let mut by_label: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (&id, t) in &log.tasks {
        if let Some(label) = t.name.label() {
            let label = label.to_lowercase();
            if contains_words(&msg, &label) {
                by_label.entry(label).or_default().push(id);
            }
        }
    }
    let told: BTreeSet<u64> = log
        .lines
        .iter()
        .filter(|l| l.kind == LineKind::Story)
        .filter_map(|l| l.task)
        .collect();
    let mut out = BTreeSet::new();
    for ids in by_label.values() {
        let telling: Vec<u64> = ids.iter().copied().filter(|t| told.contains(t)).collect();
        match telling.is_empty() {
            true => out.extend(ids.first()),
            false => out.extend(telling),
        }
    }
    out
}

/// The lines the focused view shows: story lines, notes, faults and ends
/// of the tasks in focus, and node events (crashes, pauses), from the first
/// story line that mentions an object the message names (from the start
/// when it names none that a story line mentions).
pub fn focused_lines<'a>(
    log: &'a TraceLog,
    tasks: &BTreeSet<u64>,
    message: Option<&str>,
) -> Vec<&'a TraceLine> {
    let objs = message.map(objects).unwrap_or_default();
    let first = log
        .lines
        .iter()
        .position(|l| l.kind == LineKind::Story && objs.iter().any(|o| mentions(l, o)))
        .unwrap_or(0);
    log.lines[first..]
        .iter()
        .filter(|l| match l.kind {
            LineKind::Node => true,
            LineKind::Story | LineKind::Note | LineKind::Fault | LineKind::Done => {
                l.task.is_some_and(|t| tasks.contains(&t))
            }
            LineKind::Poll | LineKind::Spawn | LineKind::Time => false,
        })
        .collect()
}

/// How the focused view is drawn.
#[derive(Clone, Debug)]
pub struct ViewStyle {
    /// Total width in characters.
    pub width: usize,
    /// Bold the cells that mention an object the oracle names.
    pub colour: bool,
}

impl ViewStyle {
    /// The width from `COLUMNS` (default 160); colour only when stdout is a
    /// terminal and `NO_COLOR` is unset.
    pub fn from_env() -> Self {
        use std::io::IsTerminal as _;
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(WIDTH_DEFAULT);
        ViewStyle {
            width,
            colour: std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
        }
    }
}

/// The focused view: a header row of task columns, then one row per line
/// (wrapped within its column), virtual time and step at the left; node
/// events span the width.
pub fn render_focus(log: &TraceLog, message: Option<&str>, style: &ViewStyle) -> Vec<String> {
    let tasks = focus_order(log, message);
    let shown: Vec<u64> = tasks.iter().copied().take(COLUMNS_MAX).collect();
    let lines = focused_lines(log, &shown.iter().copied().collect(), message);
    let objs = message.map(objects).unwrap_or_default();
    let left = format!("{:>12} {:>6} ", "time ms", "step");
    let col_w = (style.width.saturating_sub(left.len()) / shown.len().max(1)).max(COLUMN_MIN) - 1;
    let column: BTreeMap<u64, usize> = shown.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut out = Vec::new();
    if !objs.is_empty() {
        let named: Vec<String> = objs
            .iter()
            .map(|o| format!("{} {}", o.noun, o.number))
            .collect();
        out.push(format!(
            "focus: the oracle names {}; shown from their first mention",
            named.join(", ")
        ));
    }
    let heads: Vec<String> = shown.iter().map(|&t| head(log, t)).collect();
    out.push(row(&left, &heads, col_w));
    let rule: Vec<String> = shown.iter().map(|_| "-".repeat(col_w)).collect();
    out.push(row(&" ".repeat(left.len()), &rule, col_w));
    for line in lines {
        let at = format!("{:>12.3} {:>6} ", line.time_ns as f64 / 1e6, line.step);
        let Some(&i) = line.task.and_then(|t| column.get(&t)) else {
            out.push(format!("{at}== {} ==", line.text));
            continue;
        };
        let text = cell_text(line);
        let hot = style.colour && objs.iter().any(|o| mentions(line, o));
        for (k, piece) in wrap(&text, col_w).into_iter().enumerate() {
            let mut cells = vec![String::new(); shown.len()];
            cells[i] = if hot {
                format!("\x1b[1m{piece}\x1b[0m")
            } else {
                piece
            };
            let lead = if k == 0 {
                at.clone()
            } else {
                " ".repeat(at.len())
            };
            out.push(row(&lead, &cells, col_w).trim_end().to_string());
        }
    }
    let hidden: Vec<String> = tasks
        .iter()
        .skip(COLUMNS_MAX)
        .map(|&t| head(log, t))
        .collect();
    if !hidden.is_empty() {
        out.push(format!("(also in focus, not shown: {})", hidden.join(", ")));
    }
    out
}

/// The tasks in focus, those the message names by label first (so they
/// get the columns), each group oldest first.
fn focus_order(log: &TraceLog, message: Option<&str>) -> Vec<u64> {
    let tasks = focus_tasks(log, message);
    let named = message.map(|m| named_tasks(log, m)).unwrap_or_default();
    let (mut first, rest): (Vec<u64>, Vec<u64>) = tasks.iter().partition(|t| named.contains(t));
    first.extend(rest);
    first
}

/// A column's header: `task 5 'appender a1' @store`.
fn head(log: &TraceLog, task: u64) -> String {
    match log.tasks.get(&task) {
        Some(t) => format!("{} @{}", log.task_label(task), log.node_name(t.node)),
        None => log.task_label(task),
    }
}

/// What a line says in its cell: a story line's level (when above DEBUG)
/// and message; other lines their text.
fn cell_text(line: &TraceLine) -> String {
    match line.kind {
        LineKind::Story if line.text.is_empty() => faultline::sim::fields_text(&line.fields),
        LineKind::Story if matches!(line.level, "WARN" | "ERROR") => {
            format!("{}: {}", line.level, line.text)
        }
        LineKind::Story => line.text.clone(),
        LineKind::Done => "(task ends)".into(),
        _ => line.text.clone(),
    }
}

/// `left`, then each cell padded to `width`, separated by `|`.
fn row(left: &str, cells: &[String], width: usize) -> String {
    let mut s = left.to_string();
    for c in cells {
        s.push('|');
        s.push_str(c);
        let shown = visible_len(c);
        s.push_str(&" ".repeat(width.saturating_sub(shown)));
    }
    s
}

/// Characters shown, ANSI escapes not counted.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// `text` in pieces of at most `width` characters, broken at spaces where
/// possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > width {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            out.push(head);
        }
        let need = cur.chars().count() + usize::from(!cur.is_empty()) + word.chars().count();
        if need > width && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// One line as a JSON object: `time_ns`, `step`, `task`, `task_name`,
/// `node`, `kind`, `level`, `target`, `text`, `fields` (an object of
/// strings).
pub fn json_line(log: &TraceLog, line: &TraceLine) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = line
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({
        "time_ns": line.time_ns,
        "step": line.step,
        "task": line.task,
        "task_name": line.task.and_then(|t| log.tasks.get(&t)).map(|t| t.name.to_string()),
        "node": line.node.map(|n| log.node_name(n)),
        "kind": line.kind.name(),
        "level": (!line.level.is_empty()).then_some(line.level),
        "target": (!line.target.is_empty()).then_some(line.target),
        "text": line.text,
        "fields": fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(noun: &str, number: &str) -> Object {
        Object {
            noun: noun.into(),
            number: number.into(),
        }
    }

    #[test]
    fn objects_skip_linking_words() {
        let o = objects("the active writer writes to segment 0 but the active segment is 1");
        assert_eq!(
            o.into_iter().collect::<Vec<_>>(),
            vec![obj("segment", "0"), obj("segment", "1")]
        );
        let o = objects("3 acknowledged events are gone (first: id 17 at ts 99)");
        assert!(o.contains(&obj("id", "17")), "{o:?}");
        assert!(o.contains(&obj("ts", "99")), "{o:?}");
    }

    fn story(text: &str, fields: Vec<(&'static str, String)>) -> TraceLine {
        TraceLine {
            time_ns: 0,
            step: 0,
            task: Some(1),
            node: Some(0),
            kind: LineKind::Story,
            level: "INFO",
            target: "t",
            text: text.into(),
            fields,
        }
    }

    #[test]
    fn mentions_by_text_or_related_field() {
        let l = story("retention rolled segment 10 to 11", vec![]);
        assert!(mentions(&l, &obj("segment", "10")));
        assert!(!mentions(&l, &obj("segment", "1")), "10 is not 1");
        let l = story("append inserts", vec![("ids", "[17, 18]".into())]);
        assert!(mentions(&l, &obj("id", "17")));
        assert!(!mentions(&l, &obj("id", "1")));
        assert!(!mentions(&l, &obj("segment", "17")), "unrelated field");
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let w = wrap("append restored the writer of segment 0", 12);
        assert!(w.iter().all(|p| p.chars().count() <= 12), "{w:?}");
        assert_eq!(w.join(" "), "append restored the writer of segment 0");
    }
}
