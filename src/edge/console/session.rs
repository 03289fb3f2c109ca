//! Console sessions: an opaque random id in a cookie, the state on the
//! server.
//!
//! A session holds the API key (or admin token) it was started with, in
//! this process's memory only, and acts with it on every request: so a key
//! that is revoked, expires or is rotated past its grace ends the power of
//! every session started with it at once. Sessions end after
//! [`Sessions::idle`] without a request, after [`Sessions::lifetime`]
//! whatever happens, at sign-out, and when the process restarts: keeping
//! them across a restart would mean writing key secrets to disk, and
//! signing in again costs one paste. Each node has its own sessions (put
//! the console behind one node, or a load balancer that sticks).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "qrlaunch_console";

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The secret it signed in with (never sent back to the browser).
    pub secret: Arc<str>,
    /// The token every form of this session carries.
    pub csrf: Arc<str>,
    /// The codes the last import generated, as CSV, for download.
    pub generated: Option<Arc<str>>,
    /// The SHA-256 of the secret: which key's sessions these are.
    key: [u8; 32],
    started: Instant,
    seen: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(…)")
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(self.csrf.as_bytes())))
    }
}

/// Every session of this process.
pub struct Sessions {
    /// By the SHA-256 of the id: the map never holds an id itself.
    by_id: Mutex<HashMap<[u8; 32], Session>>,
    pub idle: Duration,
    pub lifetime: Duration,
}

impl Sessions {
    /// Sessions kept at most; past it the least recently used one ends.
    pub const MAX: usize = 10_000;
    /// Sessions of one key at most; past it that key's least recently used
    /// one ends (so that signing in again and again with one key cannot
    /// push anyone else's session out).
    pub const MAX_PER_KEY: usize = 16;

    pub fn new(idle: Duration, lifetime: Duration) -> Sessions {
        Sessions {
            by_id: Mutex::default(),
            idle,
            lifetime,
        }
    }

    fn digest(id: &str) -> [u8; 32] {
        Sha256::digest(id.as_bytes()).into()
    }

    /// Starts a session acting with `secret`; its id, for the cookie.
    pub fn start(&self, secret: &str) -> String {
        let id = random_token();
        let now = Instant::now();
        let key = Sessions::digest(secret);
        let session = Session {
            secret: secret.into(),
            csrf: random_token().into(),
            generated: None,
            key,
            started: now,
            seen: now,
        };
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest_of = |sessions: &HashMap<[u8; 32], Session>, same_key: bool| {
            sessions
                .iter()
                .filter(|(_, s)| !same_key || s.key == key)
                .min_by_key(|(_, s)| s.seen)
                .map(|(id, _)| *id)
        };
        if sessions.values().filter(|s| s.key == key).count() >= Sessions::MAX_PER_KEY {
            if let Some(oldest) = oldest_of(&sessions, true) {
                sessions.remove(&oldest);
            }
        }
        if sessions.len() >= Sessions::MAX {
            sessions.retain(|_, s| self.alive(s, now));
        }
        if sessions.len() >= Sessions::MAX {
            if let Some(oldest) = oldest_of(&sessions, false) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(Sessions::digest(&id), session);
        id
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.seen) < self.idle && now.duration_since(session.started) < self.lifetime
    }

    /// The live session with this id (and it was used now), or `None`; an
    /// expired one ends here.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let digest = Sessions::digest(id);
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        let session = sessions.get_mut(&digest)?;
        if !self.alive(session, now) {
            sessions.remove(&digest);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    /// Keeps the codes an import generated (CSV) for this session.
    pub fn keep_generated(&self, id: &str, csv: String) {
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = sessions.get_mut(&Sessions::digest(id)) {
            session.generated = Some(csv.into());
        }
    }

    /// Ends the session (sign-out).
    pub fn end(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Sessions::digest(id));
    }

    /// Sessions alive now.
    pub fn count(&self) -> usize {
        let now = Instant::now();
        let sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.values().filter(|s| self.alive(s, now)).count()
    }
}

/// 256 random bits as 64 hex digits, from the OS's CSPRNG (through rand's
/// thread generator, which reseeds from it).
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_too_long_or_when_signed_out() {
        let sessions = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let id = sessions.start("qrk_a_b");
        let session = sessions.get(&id).expect("live");
        assert_eq!(&*session.secret, "qrk_a_b");
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("x"));
        assert!(sessions.get("not-an-id").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&id).is_none(), "idle past the timeout");
        let id = sessions.start("k");
        sessions.end(&id);
        assert!(sessions.get(&id).is_none(), "signed out");
        let lifetime = Sessions::new(Duration::from_secs(60), Duration::ZERO);
        let id = lifetime.start("k");
        assert!(lifetime.get(&id).is_none(), "past its lifetime");
    }

    #[test]
    fn ids_are_random_and_never_kept() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let (a, b) = (sessions.start("k"), sessions.start("k"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let kept = sessions.by_id.lock().unwrap();
        assert!(kept.keys().all(|k| k != a.as_bytes() && k != b.as_bytes()));
    }

    #[test]
    fn one_key_signing_in_again_and_again_ends_only_its_own_sessions() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(60));
        let other = sessions.start("someone else");
        let first = sessions.start("k");
        for _ in 0..Sessions::MAX_PER_KEY {
            sessions.start("k");
        }
        assert!(sessions.get(&first).is_none(), "the key's oldest session ended");
        assert!(sessions.get(&other).is_some(), "another key's session stays");
        assert_eq!(sessions.count(), Sessions::MAX_PER_KEY + 1);
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; qrlaunch_console=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie("qrlaunch_console_x=1", COOKIE), None);
        assert_eq!(cookie("", COOKIE), None);
    }
}
