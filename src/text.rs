//! Text made safe for where it is shown, in one place for every renderer (the comment, the job
//! summary, the plan, the step table), and how a revision is named there.

/// `family:revision` from a task definition ARN (a `family:revision` stays as it is): how a revision
/// is named wherever a person reads it.
pub(crate) fn family_revision(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Text made safe for one cell or line of a markdown table: its pipes escaped, its lines joined.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Longest text we do not control (an alarm's reason, an ECS event, a stopped reason) shown whole in
/// the comment or summary; the job log has the rest.
pub(crate) const FIELD_LIMIT: usize = 1_000;

/// Text we do not control as an inline code span, inert wherever markdown goes: no mention, link,
/// HTML, emphasis or comment in it is live, whatever backticks it holds; one line; at most
/// `FIELD_LIMIT` characters. In a table, pass the result through `cell` as well.
pub(crate) fn code(text: &str) -> String {
    let one_line = text.replace("\r\n", " ⏎ ").replace(['\r', '\n'], " ⏎ ");
    let total = one_line.chars().count();
    let shown: String = one_line.chars().take(FIELD_LIMIT).collect();
    let fence = "`".repeat(longest_backtick_run(&shown) + 1);
    let mut out = format!("{fence} {shown} {fence}");
    if total > FIELD_LIMIT {
        out.push_str(&format!(" … ({} more characters in the job log)", total - FIELD_LIMIT));
    }
    out
}

/// The longest run of backticks in `text`: a fence must be longer to hold it inert.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Lines we do not control as a fenced code block, inert (the fence is longer than any backtick run
/// in them), each line capped at `FIELD_LIMIT` characters.
pub(crate) fn fenced(lines: &[String]) -> String {
    let capped: Vec<String> = lines.iter().map(|l| l.replace('\r', "").chars().take(FIELD_LIMIT).collect()).collect();
    let longest_run = capped.iter().map(|l| longest_backtick_run(l)).max().unwrap_or(0);
    let fence = "`".repeat((longest_run + 1).max(3));
    format!("{fence}text\n{}\n{fence}\n", capped.join("\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_we_do_not_control_becomes_an_inert_code_span() {
        let hostile = "Threshold Crossed\n::error::pwned @org/team <img src=x> [click](https://evil.example) \
                       </details> <!-- ecs-deploy-action:demo/web --> ``x`";
        let span = super::code(hostile);
        assert!(span.starts_with("``` ") && span.ends_with(" ```"), "a fence longer than any run inside: {span}");
        assert!(!span.contains('\n'), "one line: {span}");
        assert!(span.contains("Threshold Crossed ⏎ ::error::pwned"), "{span}");
        let long = "x".repeat(200_000);
        let capped = super::code(&long);
        assert!(capped.len() < 1_100, "{}", capped.len());
        assert!(capped.ends_with("… (199000 more characters in the job log)"));
    }

    #[test]
    fn log_lines_are_fenced_beyond_any_fence_inside_them() {
        let block = super::fenced(&["```".to_string(), "</details> @org/team".to_string()]);
        assert!(block.starts_with("````text\n```\n</details> @org/team\n````"), "{block}");
    }

    #[test]
    fn a_cell_keeps_its_row_whole() {
        assert_eq!(super::cell("a | b\nc\r\nd"), "a \\| b c  d");
    }
}
