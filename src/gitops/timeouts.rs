//! libgit2's network timeouts. Without them a server that accepts a connection and
//! never answers would hold a fetch — and with it the reconciler's policy poll —
//! forever. They are process-wide in libgit2, so they are set once, before the first
//! repository is opened.

use std::sync::Once;

/// Environment variable: how long a fetch may wait on the network for any one read or
/// write (`30s`, `2m`; default 60s). Connecting gets at most 30 s of it.
pub const ENV_GIT_TIMEOUT: &str = "AD2ENTRA_GIT_TIMEOUT";

const DEFAULT_IO_SECS: u64 = 60;
const MAX_CONNECT_SECS: u64 = 30;

/// Sets the timeouts from [`ENV_GIT_TIMEOUT`] on the first call; later calls do nothing.
pub(super) fn ensure_network_timeouts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let io = std::env::var(ENV_GIT_TIMEOUT)
            .ok()
            .and_then(|v| crate::policy::load::parse_duration(&v))
            .unwrap_or(DEFAULT_IO_SECS);
        let ms = |secs: u64| i32::try_from(secs.saturating_mul(1000)).unwrap_or(i32::MAX);
        // SAFETY: libgit2 keeps these in plain globals that only its network streams
        // read. Every network operation of this process goes through
        // `GitPolicySource::fetch`, which runs after `open` returned, i.e. after this
        // `Once` completed; the `Once` orders this write before those reads, and there
        // is no other writer.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms(
                io.min(MAX_CONNECT_SECS)
            ));
            let _ = git2::opts::set_server_timeout_in_milliseconds(ms(io));
        }
        tracing::debug!(seconds = io, "git network timeout");
    });
}
