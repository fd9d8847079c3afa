//! Log output for `serve`: stderr, RFC 3339 times, no thread or module noise. Under systemd,
//! journald picks the lines up from stderr.

/// Installs the logger at `level` (`error` … `trace`; anything else means `info`). A second
/// call changes nothing.
pub fn init(level: &str) {
    let level = level.parse().unwrap_or(log::LevelFilter::Info);
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_thread_level(log::LevelFilter::Off)
        .set_target_level(log::LevelFilter::Off)
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}
