//! The canary's step table, as log text and as markdown: weight, bake, canary tasks, each gate's last
//! value, result and time.

use std::fmt::Write as _;

use crate::config::duration;
use crate::records::{StepRecord, StepResult, Verdict};
use crate::text::{cell, code};

fn result(r: StepResult) -> &'static str {
    match r {
        StepResult::Pending => "pending",
        StepResult::Running => "running",
        StepResult::Passed => "passed",
        StepResult::Failed => "FAILED",
    }
}

fn gates(row: &StepRecord) -> String {
    if row.gates.is_empty() {
        return "-".into();
    }
    row.gates
        .iter()
        .map(|g| {
            let mark = match g.verdict {
                Verdict::Passed => "",
                Verdict::Failed | Verdict::Breached => " ✗",
                Verdict::Unreadable | Verdict::Waiting => " ?",
            };
            format!("{} {}{mark}", g.gate, g.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn took(row: &StepRecord) -> String {
    row.took
        .map(|d| duration::format(std::time::Duration::from_secs(d.as_secs_f64().round() as u64)))
        .unwrap_or_else(|| "-".into())
}

/// Fixed-width lines for the log.
pub(crate) fn text(table: &[StepRecord]) -> String {
    let mut out = String::from("step  weight  bake    tasks  result   time   gates\n");
    for (i, row) in table.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<5} {:<7} {:<7} {:<6} {:<8} {:<6} {}",
            i + 1,
            format!("{}%", row.weight),
            duration::format(row.bake),
            row.canary_tasks,
            result(row.result),
            took(row),
            gates(row)
        );
    }
    out
}

/// A markdown table for the job summary and the pull-request comment.
pub(crate) fn markdown(table: &[StepRecord]) -> String {
    let mut md = String::from(
        "| Step | Weight | Bake | Canary tasks | Gates (last check) | Result | Time |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, row) in table.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {}% | {} | {} | {} | {} | {} |",
            i + 1,
            row.weight,
            duration::format(row.bake),
            row.canary_tasks,
            if row.gates.is_empty() { "-".to_string() } else { cell(&code(&gates(row))) },
            result(row.result),
            took(row)
        );
    }
    md
}
