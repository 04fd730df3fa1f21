//! Logs: human-readable or JSON lines, filtered as the settings say (`RAYO_LOG`, default
//! `info`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// hickory-server logs every DNS question at `info`: one line per query would let anyone
/// who can send UDP packets fill the log. Its warnings still show; `RAYO_LOG` naming
/// `hickory_server` itself overrides this.
const QUIET_DNS: &str = "hickory_server=warn,hickory_net=warn,hickory_proto=warn";

pub fn init(format: LogFormat, filter: &str) {
    let filter = if filter.contains("hickory") {
        filter.to_owned()
    } else {
        format!("{filter},{QUIET_DNS}")
    };
    let filter =
        EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_DNS}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start many apps in one process) is not an error worth reporting.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
