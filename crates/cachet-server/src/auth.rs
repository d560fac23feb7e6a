//! Tokens, their scopes, and the check every request passes before it touches the store.
//!
//! A token grants scopes (`read`, `write`, `admin`; `admin` implies the other two) on a list of
//! namespaces or on `*`. Only blake3 digests of the tokens are kept, and a presented token is
//! digested and compared with every known digest with `subtle`'s constant-time equality, so
//! neither the comparison time nor a memory dump reveals a token. Tokens are never logged:
//! a token is named in logs by its line number only.
//!
//! Credentials come as `Authorization: Bearer TOKEN` (cachet's wrapper, sccache's
//! `SCCACHE_WEBDAV_TOKEN`) or as HTTP Basic (`http://user:TOKEN@host/` from ccache, sccache's
//! username/password): the password is tried, then the user name.

use std::path::{Path, PathBuf};

use base64::Engine;
use subtle::ConstantTimeEq;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// GET, HEAD, PROPFIND: learn whether an object exists and read it.
    Read,
    /// PUT, DELETE, MKCOL.
    Write,
    /// Purge a namespace, zero the statistics.
    Admin,
}

impl Scope {
    /// The scope as token files and error messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Scopes {
    read: bool,
    write: bool,
    admin: bool,
}

impl Scopes {
    fn allows(self, scope: Scope) -> bool {
        self.admin
            || match scope {
                Scope::Read => self.read,
                Scope::Write => self.write,
                Scope::Admin => false,
            }
    }
}

#[derive(Debug, Clone)]
struct Token {
    digest: [u8; 32],
    scopes: Scopes,
    /// `None` = every namespace (`*`).
    namespaces: Option<Vec<String>>,
    /// Where it was declared (`tokens.txt:3`), the only way a token appears in logs.
    origin: String,
}

/// The configured tokens. Empty means the server is open: everyone may do everything.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or credentials matching no token: 401.
    Unauthenticated,
    /// A valid token without the needed scope on this namespace: 403.
    Forbidden,
}

/// The tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("failed to read token file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry is malformed (the token itself is never shown).
    #[error("invalid token entry at {origin}: {reason}")]
    Syntax {
        /// `file:line` or `CACHET_TOKENS:entry`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

impl Tokens {
    /// Reads a token file (see [`Tokens::parse`]).
    pub fn from_file(path: &Path) -> Result<Tokens, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// Reads entries separated by newlines or `;`: `TOKEN SCOPES [NAMESPACES]`, where SCOPES is
    /// a comma list of `read`, `write`, `admin` and NAMESPACES a comma list of namespaces or
    /// `*` (the default). Blank entries and `#` comments are ignored.
    pub fn parse(text: &str, source: &str) -> Result<Tokens, TokenError> {
        let mut tokens = Vec::new();
        for (i, entry) in text.split(['\n', ';']).enumerate() {
            let entry = entry.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let origin = format!("{source}:{}", i + 1);
            let syntax = |reason: String| TokenError::Syntax {
                origin: origin.clone(),
                reason,
            };
            let fields: Vec<&str> = entry.split_whitespace().collect();
            if !(2..=3).contains(&fields.len()) {
                return Err(syntax("expected `TOKEN SCOPES [NAMESPACES]`".into()));
            }
            let secret = fields[0];
            if secret.len() < 8 {
                return Err(syntax(
                    "the token must be at least 8 characters long".into(),
                ));
            }
            let mut scopes = Scopes::default();
            for s in fields[1].split(',') {
                match s {
                    "read" => scopes.read = true,
                    "write" => scopes.write = true,
                    "admin" => scopes.admin = true,
                    other => {
                        return Err(syntax(format!(
                            "unknown scope {other:?}: expected read, write or admin"
                        )))
                    }
                }
            }
            let namespaces = match fields.get(2) {
                None | Some(&"*") => None,
                Some(list) => {
                    let list: Vec<String> = list.split(',').map(str::to_string).collect();
                    if let Some(bad) = list
                        .iter()
                        .find(|ns| !cachet_core::wire::is_valid_namespace(ns))
                    {
                        return Err(syntax(format!("invalid namespace {bad:?}")));
                    }
                    Some(list)
                }
            };
            tokens.push(Token {
                digest: digest(secret.as_bytes()),
                scopes,
                namespaces,
                origin,
            });
        }
        Ok(Tokens { tokens })
    }

    /// Adds the tokens of `other`.
    pub fn extend(&mut self, other: Tokens) {
        self.tokens.extend(other.tokens);
    }

    /// True when no token is configured (the server is open).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Checks an `Authorization` header value for `scope` on `namespace` (`None`: every
    /// namespace, as for zeroing the statistics). Returns the matching token's origin.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        scope: Scope,
        namespace: Option<&str>,
    ) -> Result<Option<&str>, Denied> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let candidates = authorization.map(credentials).unwrap_or_default();
        let mut found: Option<&Token> = None;
        let mut allowed: Option<&Token> = None;
        for candidate in candidates.iter().map(|c| digest(c)) {
            // Compare against every token (no early exit) so timing does not tell which one.
            for token in &self.tokens {
                if bool::from(token.digest.ct_eq(&candidate)) {
                    found.get_or_insert(token);
                    if token.scopes.allows(scope) && token.covers(namespace) {
                        allowed.get_or_insert(token);
                    }
                }
            }
        }
        match (allowed, found) {
            (Some(t), _) => Ok(Some(t.origin.as_str())),
            (None, Some(_)) => Err(Denied::Forbidden),
            (None, None) => Err(Denied::Unauthenticated),
        }
    }
}

impl Token {
    fn covers(&self, namespace: Option<&str>) -> bool {
        match (&self.namespaces, namespace) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
        }
    }
}

fn digest(secret: &[u8]) -> [u8; 32] {
    *blake3::hash(secret).as_bytes()
}

/// The secrets an `Authorization` value offers, most likely first.
fn credentials(value: &[u8]) -> Vec<Vec<u8>> {
    let Ok(value) = std::str::from_utf8(value) else {
        return Vec::new();
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return vec![rest.as_bytes().to_vec()];
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return Vec::new();
        };
        let (user, pass) = match decoded.iter().position(|&b| b == b':') {
            Some(i) => (decoded[..i].to_vec(), decoded[i + 1..].to_vec()),
            None => (decoded, Vec::new()),
        };
        return [pass, user].into_iter().filter(|c| !c.is_empty()).collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b64}").into_bytes()
    }

    #[test]
    fn scopes_and_namespaces() {
        let t = Tokens::parse(
            "reader-123 read cachet\nwriter-123 read,write # CI\n; admin-1234 admin *",
            "test",
        )
        .expect("valid");
        assert_eq!(t.len(), 3);
        let bearer = |s: &str| format!("Bearer {s}").into_bytes();
        let ok = |h: &[u8], scope, ns| t.check(Some(h), scope, ns).is_ok();
        assert!(ok(&bearer("reader-123"), Scope::Read, Some("cachet")));
        assert_eq!(
            t.check(Some(&bearer("reader-123")), Scope::Read, Some("other")),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.check(Some(&bearer("reader-123")), Scope::Write, Some("cachet")),
            Err(Denied::Forbidden)
        );
        assert!(ok(&bearer("writer-123"), Scope::Write, Some("x")));
        assert!(ok(&basic("u", "writer-123"), Scope::Write, Some("x")));
        assert!(ok(&basic("writer-123", ""), Scope::Write, Some("x")));
        assert!(ok(&bearer("admin-1234"), Scope::Admin, None));
        assert_eq!(
            t.check(Some(&bearer("nope-1234")), Scope::Read, Some("cachet")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.check(None, Scope::Read, Some("cachet")),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn open_when_empty() {
        assert!(Tokens::default().check(None, Scope::Admin, None).is_ok());
    }

    #[test]
    fn syntax_errors_never_show_the_token() {
        let err = Tokens::parse("sekrit-token reed", "f").expect_err("bad scope");
        assert!(!err.to_string().contains("sekrit"), "{err}");
        assert!(Tokens::parse("short read", "f").is_err());
        assert!(Tokens::parse("long-enough read ../x", "f").is_err());
    }
}
