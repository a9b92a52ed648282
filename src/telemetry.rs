//! Logging through `tracing`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber that writes logs to stderr.
pub fn init(format: LogFormat, filter_text: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter_text)
        .map_err(|error| anyhow::anyhow!("invalid log filter {filter_text:?}: {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);

    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }

    if !enables_trainhook(filter_text) {
        eprintln!(
            "warning: the log filter {filter_text:?} sets no level for trainhook, so trainhook logs nothing; use a level such as info, or trainhook=debug"
        );
    }
    Ok(())
}

/// Tells whether a filter sets a default level or one for trainhook's own
/// targets. A misspelt level such as `inf` is valid syntax (a target name
/// with no level), and would otherwise silence every line.
fn enables_trainhook(filter: &str) -> bool {
    const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
    filter.split(',').map(str::trim).any(|directive| {
        LEVELS.contains(&directive.to_ascii_lowercase().as_str())
            || (directive.starts_with("trainhook") && !directive.ends_with("=off"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_that_silence_trainhook_are_found() {
        for silent in ["notalevel", "inf", "kube=debug", "off", "trainhook=off"] {
            assert!(!enables_trainhook(silent), "{silent}");
        }
        for enabling in ["info", "WARN", "info,kube_runtime=warn", "trainhook=debug"] {
            assert!(enables_trainhook(enabling), "{enabling}");
        }
    }
}
