//! The collector every input check writes to: all problems of a run's inputs are reported at once,
//! each under the input's name, rather than one per attempt.

use super::InputError;

/// Collects every problem instead of stopping at the first.
#[derive(Default)]
pub(super) struct Check {
    pub(super) errors: Vec<InputError>,
    pub(super) warnings: Vec<String>,
}

impl Check {
    pub(super) fn fail(&mut self, input: &'static str, message: impl Into<String>) {
        self.errors.push(InputError { input, message: message.into() });
    }

    /// Runs `parse` on a set input; records its error under the input's name.
    pub(super) fn parse<T>(
        &mut self,
        input: &'static str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        match parse(value.trim()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.fail(input, message);
                None
            }
        }
    }
}
