//! # graph-emulator
//!
//! A stateful emulator of the Microsoft Graph v1.0 subset ad2entra uses, for tests and for
//! trying a policy against an empty fake tenant (DESIGN.md §8). It speaks HTTP like Graph:
//!
//! - **Token endpoint** `POST /{tenant}/oauth2/v2.0/token`: client credentials with
//!   `client_secret` (form or HTTP Basic) or a JWT `client_assertion` (RS256/PS256, `aud` = the
//!   token endpoint, `iss` = `sub` = client id, `exp`; verified against
//!   [`EmulatorConfig::client_certificate_pem`], `x5t`/`x5t#S256` checked when present). Errors
//!   use the AADSTS shape of samples/token-error-400.json. Tokens expire after
//!   [`EmulatorConfig::token_lifetime_secs`]; Graph then answers 401 `InvalidAuthenticationToken`.
//! - **Graph** under `/v1.0`: users (list, get by id or UPN, create, update, soft delete),
//!   security groups, members (`$ref`, `members@odata.bind` ≤ 20, all-or-nothing), manager
//!   (`PUT/DELETE /users/{id}/manager/$ref`, `GET /users/{id}/manager`), memberOf,
//!   `assignLicense`, subscribedSkus (consumedUnits), domains, organization, applications
//!   (list with `$filter`/`$select`, get, addressed by id or `(appId='…')`) and their
//!   `extensionProperties`, directory roles ([`roles`]: `/directoryRoles`, `/{id}`,
//!   `(roleTemplateId='…')`, `/members`), deleted items (list, get, purge, restore), a domain's
//!   federation configuration ([`federation`]: `internalDomainFederation`), `/users|groups/$count`,
//!   delta (`/users/delta`, `/groups/delta`), `$batch`. Query options: `$select` (defaults as
//!   Graph), `$top` ≤ 999 with `@odata.nextLink`, `$filter` (eq, in, startswith, and/or, `eq null`;
//!   ne/not/endswith only with `ConsistencyLevel: eventual` + `$count=true`), `$count`, `$search`,
//!   `$orderby`. Errors have Graph's shape with `innerError` and every response a `request-id`.
//! - **Application permissions** ([`permissions`]): tokens carry the permissions consented for
//!   their app ([`EmulatorConfig::permissions`], and [`EmulatorConfig::additional_clients`] for
//!   more app registrations, e.g. a read-only one for CI); each route needs one of the
//!   permissions its Microsoft reference page lists, else 403 `Authorization_RequestDenied`.
//!   `POST /directoryObjects/getAvailableExtensionProperties` lists every app's directory
//!   extensions (empty above [`EmulatorConfig::available_extensions_limit`] apps, Graph's
//!   documented known issue).
//! - **Throttling** ([`ThrottleConfig`]): token buckets with the documented costs; 429 with
//!   `Retry-After`. `time_scale` (e.g. 100.0) shortens every window and delay: unscaled,
//!   `Retry-After` is an integer ≥ 1; scaled, it is fractional seconds with millisecond
//!   precision (`0.153`) and `Retry-After-Ms` holds the same delay in integer milliseconds.
//! - **Value rules** ([`rules`]): Graph's documented rules on user and group values
//!   (lengths, accents in `mail`, `usageLocation`, single-valued `businessPhones`…), and
//!   [`rules::UndocumentedRule`]s a test adds to imitate a refusal nobody documented.
//! - **Faults** ([`FaultConfig`], all off by default): random 500/503, added latency,
//!   replication lag (fresh objects 404 / missing from lists for N ms), connections closed
//!   before processing, connections closed *after* a committed write, and reads that end
//!   early: continuation pages that are not JSON or lack `value`, next links broken for good,
//!   delta pages with neither next nor delta link.
//! - **Delta tokens** ([`delta`]): [`Emulator::expire_delta_tokens`] (400 `syncStateNotFound`)
//!   and [`Emulator::reset_delta_sync`] (410 Gone) for tests of the client's full resync.
//! - **Control plane** under `/_emulator` (no auth): `POST seed` ([`seed::Seed`]), `GET state`,
//!   `GET stats` ([`Stats`]), `POST reset`, `GET|POST config` (`{"faults":{..},
//!   "throttling":{..}, "timeScale": N}`), `POST delta/expire`, `POST delta/reset`.
//!
//! In-process use:
//!
//! ```no_run
//! # async fn demo() -> Result<(), graph_emulator::EmulatorError> {
//! use graph_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::default()).await?;
//! let graph_root = emu.base_url();       // http://127.0.0.1:PORT/v1.0
//! let authority = emu.authority_url();   // http://127.0.0.1:PORT
//! let token_url = emu.token_url();       // {authority}/{tenant}/oauth2/v2.0/token
//! # let _ = (graph_root, authority, token_url);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Checking requests against the OpenAPI description
//!
//! [`conformance::check_request`]`(method, url, body)` checks that a request the client is about
//! to send matches Microsoft's OpenAPI description of the subset (path, method, body property
//! names and types, documented required properties on create, `$select`/`$orderby` values,
//! `$batch` envelopes with every inner request; endpoints Microsoft documents but the subset lacks
//! are checked against [`conformance::DOCUMENTED_NOT_IN_SUBSET`]). [`conformance::check_response`] checks
//! responses. Both return `Err(String)` listing every problem:
//!
//! ```
//! use graph_emulator::conformance::check_request;
//! use serde_json::json;
//! assert!(check_request("POST", "/v1.0/groups/abc/members/$ref",
//!     Some(&json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/x"}))).is_ok());
//! assert!(check_request("PATCH", "/v1.0/users/abc", Some(&json!({"displayNam": "typo"}))).is_err());
//! ```

pub mod auth;
pub mod batch;
pub mod config;
pub mod conformance;
pub mod delta;
pub mod errors;
pub mod faults;
pub mod federation;
pub mod filter;
pub mod graph;
pub mod index;
pub mod model;
pub mod organization;
pub mod permissions;
pub mod query;
pub mod roles;
pub mod rules;
pub mod seed;
pub mod server;
pub mod stats;
pub mod store;
pub mod throttle;

pub use config::{
    ApplicationConfig, BucketConfig, ClientConfig, DomainConfig, EmulatorConfig,
    ExtensionPropertyConfig, FaultConfig, SkuConfig, TenantSize, ThrottleConfig,
};
pub use errors::{EmulatorError, GraphError};
pub use seed::{Seed, SeedReport};
pub use stats::Stats;

use std::net::SocketAddr;
use std::sync::Arc;

/// A running emulator. Dropping it stops the server too; [`Emulator::shutdown`] waits for it.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on a given address (port 0 picks a free port).
    pub async fn start_on(
        config: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<Emulator, EmulatorError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = server::shared(config, addr);
        let router = server::router(shared.clone());
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, rx));
        Ok(Emulator {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graph root, e.g. `http://127.0.0.1:PORT/v1.0`.
    pub fn base_url(&self) -> String {
        self.shared.root.clone()
    }

    /// Authority (identity platform) root, e.g. `http://127.0.0.1:PORT`.
    pub fn authority_url(&self) -> String {
        self.shared.authority.clone()
    }

    /// The token endpoint for the configured tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.shared.authority,
            self.config().tenant_id
        )
    }

    /// The configuration in force (faults and throttling reflect runtime changes).
    pub fn config(&self) -> EmulatorConfig {
        self.shared.lock().config.clone()
    }

    /// Adds seed data (additive; all-or-nothing).
    pub fn seed(&self, seed: &Seed) -> Result<SeedReport, EmulatorError> {
        self.shared.seed(seed)
    }

    /// Full state dump (users, deleted users, groups with members, domains, SKUs, apps).
    pub fn state(&self) -> serde_json::Value {
        self.shared.state()
    }

    /// Counters since start or the last reset.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), EmulatorError> {
        let mut c = self.config();
        c.faults = faults.clone();
        c.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// Replaces the throttling settings (buckets restart full).
    pub fn set_throttling(&self, throttling: ThrottleConfig) -> Result<(), EmulatorError> {
        let mut c = self.config();
        c.throttling = throttling.clone();
        c.validate()?;
        self.shared.set_throttling(throttling);
        Ok(())
    }

    /// Changes only the time scale of throttling.
    pub fn set_time_scale(&self, time_scale: f64) -> Result<(), EmulatorError> {
        let mut t = self.config().throttling;
        t.time_scale = time_scale;
        self.set_throttling(t)
    }

    /// Expires every delta token and next link issued so far, as if their 7 days had passed:
    /// the next use answers 400 `syncStateNotFound` and the client must read everything again.
    pub fn expire_delta_tokens(&self) {
        self.shared.lock().delta.expire_all();
    }

    /// Resets the sync state of every delta token and next link issued so far, as Graph does
    /// after maintenance: the next use answers 410 Gone (`resyncRequired`) with a `Location`.
    pub fn reset_delta_sync(&self) {
        self.shared.lock().delta.reset_all();
    }

    /// Makes the emulator refuse a value for a reason no documentation gives, as Graph
    /// sometimes does (kept until [`Emulator::reset`]).
    pub fn add_undocumented_rule(&self, rule: rules::UndocumentedRule) {
        self.shared.lock().dir.undocumented_rules.push(rule);
    }

    /// From now on, keeps the initial passwords clients send in `passwordProfile` (Graph
    /// stores them and never returns them), for [`Emulator::received_passwords`]: a test
    /// that the client shows them nowhere needs to know them.
    pub fn record_passwords(&self) {
        let mut g = self.shared.lock();
        g.dir.received_passwords.get_or_insert_with(Vec::new);
    }

    /// The passwords received since [`Emulator::record_passwords`], in order.
    pub fn received_passwords(&self) -> Vec<String> {
        self.shared
            .lock()
            .dir
            .received_passwords
            .clone()
            .unwrap_or_default()
    }

    /// Back to the start configuration with an empty directory.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
