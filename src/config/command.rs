//! The pre-deploy command as the workflow writes it: a JSON array, or words with quotes kept.

/// `migrate --exit 3`, `["sh", "-c", "x y"]`, `run "two words"`: a JSON array, or words split on
/// whitespace with single and double quotes kept together.
pub(crate) fn parse_command(v: &str) -> Result<Vec<String>, String> {
    let v = v.trim();
    if v.starts_with('[') {
        let words: Vec<String> = serde_json::from_str(v).map_err(|e| {
            format!("is not a JSON array of strings ({e}): write it like `[\"migrate\", \"--exit\", \"0\"]`")
        })?;
        return if words.is_empty() { Err("is an empty array: name a command".into()) } else { Ok(words) };
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in v.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if quote.is_some() {
        return Err("has a quote that is not closed".into());
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    if words.is_empty() { Err("is empty: name a command".into()) } else { Ok(words) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_json_arrays_or_words_with_quotes_kept_together() {
        assert_eq!(parse_command("migrate --exit 3").unwrap(), ["migrate", "--exit", "3"]);
        assert_eq!(
            parse_command(r#"sh -c "rails db:migrate && echo done""#).unwrap(),
            ["sh", "-c", "rails db:migrate && echo done"]
        );
        assert_eq!(parse_command(r#"echo '' x"#).unwrap(), ["echo", "", "x"]);
        assert_eq!(parse_command(r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        assert!(parse_command("run \"open").unwrap_err().contains("not closed"));
        assert!(parse_command("[1, 2]").unwrap_err().contains("JSON array of strings"));
        assert!(parse_command("  ").is_err());
    }
}
