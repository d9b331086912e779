//! A value that must never be printed: its Debug and Display show `***`; and which environment
//! values look like secrets, so that a container's log tail posted to a pull request cannot carry them.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it (a header, a mask command).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Parts of a variable's name that say its value is a secret.
const SECRET_NAMES: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "DSN"];

/// What of `name=value` must be masked: the whole value when the name looks secret (`*KEY*`,
/// `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`, `*AUTH*`, `*DSN*`), or the password of a URL
/// (`scheme://user:password@host`) under any name. Values a mask would wreck the log with (shorter
/// than 6 characters, numbers, booleans) are no secret of this kind and stay.
pub(crate) fn to_mask<'v>(name: &str, value: &'v str) -> Option<&'v str> {
    let name = name.to_ascii_uppercase();
    let value = value.trim();
    let mask = if SECRET_NAMES.iter().any(|part| name.contains(part)) { Some(value) } else { url_password(value) };
    let plain = ["true", "false", "yes", "no", "on", "off", "none", "null"];
    mask.filter(|m| {
        m.len() >= 6
            && !m.chars().all(|c| c.is_ascii_digit() || c == '.')
            && !plain.contains(&m.to_ascii_lowercase().as_str())
    })
}

/// The password in `scheme://user:password@host…`.
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::{Secret, to_mask};

    #[test]
    fn values_of_secret_looking_names_and_url_passwords_are_masked() {
        assert_eq!(to_mask("DB_PASSWORD", "hunter2-s3cret"), Some("hunter2-s3cret"));
        assert_eq!(to_mask("stripe_api_key", "sk_live_abcdef"), Some("sk_live_abcdef"));
        assert_eq!(
            to_mask("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/1"),
            Some("https://abc@o1.ingest.sentry.io/1")
        );
        assert_eq!(to_mask("GITHUB_TOKEN", "ghs_0123456789"), Some("ghs_0123456789"));
        assert_eq!(to_mask("DATABASE_URL", "postgres://app:pa55word@db:5432/app"), Some("pa55word"));
        assert_eq!(to_mask("DATABASE_URL", "postgres://db:5432/app"), None);
        assert_eq!(to_mask("APP_ENV", "production"), None);
        // A mask of these would redact every `true` or `3000` in the log.
        assert_eq!(to_mask("FEATURE_KEY_ENABLED", "true"), None);
        assert_eq!(to_mask("API_KEY_VERSION", "3"), None);
        assert_eq!(to_mask("AUTH_TIMEOUT_MS", "30000"), None);
    }

    #[test]
    fn never_formats_its_value() {
        let s = Secret::new("ghp_abc");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "ghp_abc");
    }
}
