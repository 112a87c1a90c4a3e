//! The policy repository's URL: which transport it needs, and so which credentials and
//! which host-key check apply.
//!
//! Forms accepted are git's: a local path, `file://`, `https://` (and `http://`, to
//! which a token is never sent), `ssh://[user@]host[:port]/path` and the scp-like
//! `[user@]host:path`. A password inside the URL is refused: it would end up in logs
//! and status output; the token belongs in `AD2ENTRA_GIT_TOKEN`.

use super::error::GitError;

/// How a URL is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A path on this machine, or `file://`: no credentials, no host.
    Local,
    /// `https://` (TLS) or plain `http://`.
    Http {
        tls: bool,
        /// The user named in the URL (`https://user@host/...`), if any.
        user: Option<String>,
        host: String,
    },
    /// `ssh://` or scp-like `user@host:path`.
    Ssh {
        user: Option<String>,
        host: String,
        /// `None` for the default port 22.
        port: Option<u16>,
    },
}

/// A validated repository URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// The URL as given (validated to hold no password).
    pub url: String,
    pub transport: Transport,
}

impl RemoteUrl {
    /// Classifies `url`; refuses empty URLs, passwords in URLs and unknown schemes.
    pub fn parse(url: &str) -> Result<Self, GitError> {
        let bad = |reason: &str| GitError::BadUrl {
            url: redact_userinfo(url),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(bad("the URL is empty"));
        }
        let transport = if let Some((scheme, rest)) = trimmed.split_once("://") {
            match scheme.to_ascii_lowercase().as_str() {
                "file" => Transport::Local,
                "https" | "http" => {
                    let (user, host, _port) = authority(rest).map_err(bad)?;
                    Transport::Http {
                        tls: scheme.eq_ignore_ascii_case("https"),
                        user,
                        host,
                    }
                }
                "ssh" | "git+ssh" | "ssh+git" => {
                    let (user, host, port) = authority(rest).map_err(bad)?;
                    Transport::Ssh { user, host, port }
                }
                _ => {
                    return Err(bad(
                        "unsupported scheme: use a path, file://, https://, ssh:// or user@host:path",
                    ));
                }
            }
        } else if let Some((user, host)) = scp_like(trimmed) {
            Transport::Ssh {
                user,
                host,
                port: None,
            }
        } else {
            Transport::Local
        };
        Ok(Self {
            url: trimmed.to_string(),
            transport,
        })
    }
}

/// `[user[:password]@]host[:port]/...` → (user, host, port). A password is an error.
fn authority(rest: &str) -> Result<(Option<String>, String, Option<u16>), &'static str> {
    let auth = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match auth.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, auth),
    };
    if userinfo.is_some_and(|u| u.contains(':')) {
        return Err(
            "the URL holds a password: put the token in AD2ENTRA_GIT_TOKEN instead, never in the URL",
        );
    }
    if userinfo.is_some_and(looks_like_a_token) {
        return Err(
            "the URL's user name looks like an access token: put the token in AD2ENTRA_GIT_TOKEN and name a plain user (or none) in the URL",
        );
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("the URL names no host");
    }
    let port = match port.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| "the port is not a number")?),
    };
    Ok((userinfo.map(str::to_string), host, port))
}

/// Hosting services accept a token as the user name (`https://ghp_…@github.com/…`),
/// which would then be logged with the URL. A user name is refused when it carries a
/// known token prefix or is as long and as plain as a generated secret; real user names
/// (`git`, `oauth2`, `x-access-token`, `bot`) are short or hyphenated words.
fn looks_like_a_token(user: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "gldt-",
        "glrt-",
        "ATBB",
    ];
    let token_prefix = PREFIXES.iter().any(|p| user.starts_with(p));
    let generated = user.len() >= 32
        && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && user.chars().any(|c| c.is_ascii_digit());
    token_prefix || generated
}

/// git's scp-like syntax: `[user@]host:path`, recognised (as git does) when a colon
/// comes before the first slash. `C:\…`-style drive letters are not hosts.
fn scp_like(url: &str) -> Option<(Option<String>, String)> {
    let colon = url.find(':')?;
    if url.find('/').is_some_and(|slash| slash < colon) {
        return None;
    }
    let head = &url[..colon];
    let (user, host) = match head.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, head),
    };
    if host.is_empty() || (host.len() == 1 && user.is_none()) {
        return None;
    }
    Some((user, host.trim_matches(['[', ']']).to_string()))
}

/// The URL with any `user:password@` part replaced, for error messages about a URL
/// that was refused because it holds a password.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Transport {
        RemoteUrl::parse(url).unwrap().transport
    }

    #[test]
    fn every_url_form_is_classified() {
        assert_eq!(t("/srv/git/policy.git"), Transport::Local);
        assert_eq!(t("relative/policy"), Transport::Local);
        assert_eq!(t("file:///srv/git/policy.git"), Transport::Local);
        assert_eq!(
            t("https://git.example.com/org/policy.git"),
            Transport::Http {
                tls: true,
                user: None,
                host: "git.example.com".into()
            }
        );
        assert_eq!(
            t("http://bot@10.0.0.1:3000/policy"),
            Transport::Http {
                tls: false,
                user: Some("bot".into()),
                host: "10.0.0.1".into()
            }
        );
        assert_eq!(
            t("ssh://git@git.example.com:2222/org/policy.git"),
            Transport::Ssh {
                user: Some("git".into()),
                host: "git.example.com".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            t("ssh://[::1]:22/policy"),
            Transport::Ssh {
                user: None,
                host: "::1".into(),
                port: Some(22)
            }
        );
        assert_eq!(
            t("git@github.com:org/policy.git"),
            Transport::Ssh {
                user: Some("git".into()),
                host: "github.com".into(),
                port: None
            }
        );
        assert_eq!(t("./dir:with-colon/x"), Transport::Local);
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_not_repeated() {
        let e = RemoteUrl::parse("https://bot:hunter2@git.example.com/p.git").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains("AD2ENTRA_GIT_TOKEN"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        for url in [
            "https://ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/org/p.git",
            "https://glpat-abcDEF123456ghiJKL78@gitlab.example.com/p.git",
            "https://4v7qz2l5x3k9m1p8r6t0w4y2b5n7c9d1f3h5j7@dev.azure.com/org/_git/p",
        ] {
            let e = RemoteUrl::parse(url).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(text.contains("AD2ENTRA_GIT_TOKEN"), "{text}");
            assert!(!text.contains("0123456789abcdef"), "{text}");
            assert!(!text.contains("abcDEF123456"), "{text}");
            assert!(!text.contains("4v7qz2l5x3k9"), "{text}");
        }
        for user in [
            "git",
            "oauth2",
            "x-access-token",
            "x-token-auth",
            "deploy-bot",
        ] {
            assert!(RemoteUrl::parse(&format!("https://{user}@git.example.com/p.git")).is_ok());
        }
        assert!(RemoteUrl::parse("").is_err());
        assert!(RemoteUrl::parse("ftp://host/x").is_err());
        assert!(RemoteUrl::parse("ssh://host:notaport/x").is_err());
    }
}
