//! How the CLI fails: a [`Report`] (printed as `error:` / `caused by:` / `hint:`) and the exit
//! code that goes with it.

use std::fmt;
use std::process::ExitCode;

/// A failure to show the user: what went wrong, its causes (outermost first) and a hint.
#[derive(Debug, Clone)]
pub struct Report {
    pub what: String,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

impl Report {
    pub fn new(what: impl Into<String>) -> Self {
        Report {
            what: what.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One line for a cairn error, without its hint: the same text as its Display minus `(hint: ..)`.
pub fn one_line(e: &cairn::Error) -> String {
    let mut s = String::new();
    if !e.operation().is_empty() {
        s.push_str(e.operation());
        s.push(' ');
    }
    match (e.store().is_empty(), e.key()) {
        (false, Some(k)) => s.push_str(&format!("{}/{}: ", e.store().trim_end_matches('/'), k)),
        (false, None) => s.push_str(&format!("{}: ", e.store())),
        (true, Some(k)) => s.push_str(&format!("{k}: ")),
        (true, None) => {}
    }
    s.push_str(&e.kind().to_string());
    if !e.message().is_empty() {
        s.push_str(": ");
        s.push_str(e.message());
    }
    s
}

impl From<cairn::Error> for Report {
    fn from(e: cairn::Error) -> Self {
        let mut chain = Vec::new();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            chain.push(s.to_string());
            src = s.source();
        }
        Report {
            what: one_line(&e),
            causes: distinct_causes(chain),
            hint: e.hint().map(str::to_string),
        }
    }
}

/// Wrapper errors often end with their source's whole text ("Generic S3 error: Error performing
/// GET ...: 404 ..."); show each cause's own part once, so every line says something new.
fn distinct_causes(chain: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, cause) in chain.iter().enumerate() {
        let mut own = cause.as_str();
        if let Some(next) = chain.get(i + 1) {
            if !next.is_empty() {
                if let Some(head) = own.strip_suffix(next.as_str()) {
                    own =
                        head.trim_end_matches(|c: char| c.is_whitespace() || c == ':' || c == '-');
                }
            }
        }
        if !own.is_empty() && out.last().map(String::as_str) != Some(own) {
            out.push(own.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_drop_the_text_their_sources_repeat() {
        let chain = vec![
            "Generic S3 error: Error performing GET /x - HTTP error: refused".to_string(),
            "Error performing GET /x - HTTP error: refused".to_string(),
            "HTTP error: refused".to_string(),
            "refused".to_string(),
            "refused".to_string(),
        ];
        assert_eq!(
            distinct_causes(chain),
            vec![
                "Generic S3 error",
                "Error performing GET /x",
                "HTTP error",
                "refused"
            ]
        );
    }

    #[test]
    fn report_prints_error_causes_and_hint() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = cairn::Error::from(io)
            .with_operation("get")
            .with_key("a.txt")
            .with_hint("look");
        let text = Report::from(e).to_string();
        assert_eq!(
            text,
            "error: get a.txt: not found\n  caused by: no such file\n  hint: look"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.what)?;
        for c in &self.causes {
            write!(f, "\n  caused by: {c}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command failed: print the report, exit 1.
    Fail(Report),
    /// Some items of a bulk command failed and were listed already: exit 2.
    Partial {
        failed: u64,
        total: u64,
        noun: &'static str,
    },
    /// Every item was done, but some objects had no recorded SHA-256, so their bytes were not
    /// checked (written by another tool): print the report naming them, exit 2 like a partial
    /// failure. Nothing silent.
    Unverified(Report),
    /// Stdout was closed by the reader (`| head`): exit 0 without a word.
    BrokenPipe,
}

impl CliError {
    /// The error on one line, causes included (for warnings).
    pub fn one_line(&self) -> String {
        match self {
            CliError::Fail(r) => {
                let mut w = r.what.clone();
                for c in &r.causes {
                    w.push_str(": ");
                    w.push_str(c);
                }
                w
            }
            CliError::Partial {
                failed,
                total,
                noun,
            } => format!("{failed} of {total} {noun} failed"),
            CliError::Unverified(r) => r.what.clone(),
            CliError::BrokenPipe => "broken pipe".into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Fail(_) => ExitCode::from(1),
            CliError::Partial { .. } | CliError::Unverified(_) => ExitCode::from(2),
            CliError::BrokenPipe => ExitCode::SUCCESS,
        }
    }
}

impl From<Report> for CliError {
    fn from(r: Report) -> Self {
        CliError::Fail(r)
    }
}

impl From<cairn::Error> for CliError {
    fn from(e: cairn::Error) -> Self {
        CliError::Fail(e.into())
    }
}

/// The result of a command.
pub type Result<T = ()> = std::result::Result<T, CliError>;

/// Shorthand for an invalid-input failure with a hint.
pub fn usage(what: impl Into<String>, hint: impl Into<String>) -> CliError {
    CliError::Fail(Report::new(what).hint(hint))
}
