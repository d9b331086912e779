//! Text made safe for where it is shown, in one place for every renderer (the comment, the job
//! summary, the plan, the step table).

/// Text made safe for one cell or line of a markdown table: its pipes escaped, its lines joined.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cell_keeps_its_row_whole() {
        assert_eq!(super::cell("a | b\nc\r\nd"), "a \\| b c  d");
    }
}
