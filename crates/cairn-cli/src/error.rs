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
        Report { what: what.into(), causes: Vec::new(), hint: None }
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
        let mut causes = Vec::new();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let line = s.to_string();
            // Wrappers often repeat their source's text; show each cause once.
            if causes.last() != Some(&line) {
                causes.push(line);
            }
            src = s.source();
        }
        Report { what: one_line(&e), causes, hint: e.hint().map(str::to_string) }
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
    Partial { failed: u64, total: u64, noun: &'static str },
    /// Stdout was closed by the reader (`| head`): exit 0 without a word.
    BrokenPipe,
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Fail(_) => ExitCode::from(1),
            CliError::Partial { .. } => ExitCode::from(2),
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
