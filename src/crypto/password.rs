//! Password hashing with argon2id (OWASP parameters), always off the async
//! runtime on a fixed pool of one thread per core, so a burst of logins cannot
//! starve other requests. A fixed pool (rather than tokio's growing blocking
//! pool) also keeps memory flat: each hash touches 19 MiB, and every new thread
//! would keep its own allocator arena of that size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};

pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password is one of the most common passwords; choose another")]
    Common,
    #[error("password must be at most {MAX_PASSWORD_LEN} characters")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<Sender<Job>> {
    static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
        for i in 0..workers() {
            let rx = rx.clone();
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => {
                            let started = std::time::Instant::now();
                            job();
                            record_job(started.elapsed());
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        Mutex::new(tx)
    })
}

/// The mean time one job (a hash or a verification) takes on the pool, in
/// microseconds: a moving average of what was measured, 0 before the first.
static JOB_US: AtomicU64 = AtomicU64::new(0);

fn record_job(took: Duration) {
    let us = took.as_micros().min(u128::from(u32::MAX)) as u64;
    let old = JOB_US.load(Ordering::Relaxed);
    let new = if old == 0 { us } else { (old * 7 + us) / 8 };
    JOB_US.store(new, Ordering::Relaxed);
}

/// The pool's threads: one per core.
pub fn workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// How long a job with `ahead` jobs queued or running before it waits before
/// it starts, from the measured job time (a first guess of 50 ms before any).
pub fn expected_wait(ahead: usize) -> Duration {
    wait_for(ahead, workers(), JOB_US.load(Ordering::Relaxed))
}

fn wait_for(ahead: usize, workers: usize, job_us: u64) -> Duration {
    let job_us = if job_us == 0 { 50_000 } else { job_us };
    let rounds = (ahead / workers.max(1)) as u64;
    Duration::from_micros(rounds.saturating_mul(job_us))
}

/// Runs `f` on the password pool and waits for it without blocking the runtime.
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    pool()
        .lock()
        .map_err(|_| PasswordError::Internal("password pool poisoned".into()))?
        .send(job)
        .map_err(|_| PasswordError::Internal("password pool stopped".into()))?;
    rx.await.map_err(|_| PasswordError::Internal("password job dropped".into()))
}

/// The password policy (`[passwords]`), checked wherever a password is
/// chosen: sign-up, reset, the account page, the CLI and the management API.
/// Hashing itself only refuses empty and over-long input, so imported
/// passwords that predate the policy keep working.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_length: usize,
    pub reject_common: bool,
}

impl Policy {
    pub fn from_config(c: &crate::config::PasswordsConfig) -> Policy {
        Policy { min_length: c.min_length, reject_common: c.reject_common }
    }

    pub fn check(&self, password: &str) -> Result<(), PasswordError> {
        let n = password.chars().count();
        if n < self.min_length.max(1) {
            Err(PasswordError::TooShort(self.min_length.max(1)))
        } else if n > MAX_PASSWORD_LEN {
            Err(PasswordError::TooLong)
        } else if self.reject_common && is_common(password) {
            Err(PasswordError::Common)
        } else {
            Ok(())
        }
    }
}

/// One of the 10,000 most common passwords (assets/common-passwords.txt),
/// compared case-insensitively.
pub fn is_common(password: &str) -> bool {
    static LIST: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    let list = LIST.get_or_init(|| include_str!("../../assets/common-passwords.txt").lines().collect());
    list.contains(password.to_lowercase().as_str())
}

fn check_length(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n == 0 {
        Err(PasswordError::TooShort(1))
    } else if n > MAX_PASSWORD_LEN {
        Err(PasswordError::TooLong)
    } else {
        Ok(())
    }
}

/// Our parameters: m = 19 MiB, t = 2, p = 1.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

thread_local! {
    // Each pool thread keeps its 19 MiB of argon2 memory for good: no page
    // faults per hash, and no freed blocks fragmenting the heap.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs argon2 with this thread's reusable memory, sized for `params`.
fn compute(params: Params, pwd: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), PasswordError> {
    compute_with(Algorithm::Argon2id, params, pwd, salt, out)
}

fn compute_with(alg: Algorithm, params: Params, pwd: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), PasswordError> {
    let a = Argon2::new(alg, Version::V0x13, params.clone());
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        let need = params.block_count();
        if blocks.len() != need {
            *blocks = vec![argon2::Block::default(); need];
        }
        a.hash_password_into_with_memory(pwd, salt, out, blocks.as_mut_slice())
            .map_err(|e| PasswordError::Internal(e.to_string()))
    })
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    check_length(&password)?;
    on_pool(move || {
        let params =
            Params::new(M_COST, T_COST, P_COST, Some(32)).map_err(|e| PasswordError::Internal(e.to_string()))?;
        let salt = super::random::bytes::<16>();
        let mut out = [0u8; 32];
        compute(params, password.as_bytes(), &salt, &mut out)?;
        Ok(format!(
            "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(out)
        ))
    })
    .await?
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`), as Auth0 and others export them.
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60
}

/// A hash Sesame can verify: bcrypt, or an argon2 PHC string.
pub fn is_supported(hash: &str) -> bool {
    is_bcrypt(hash)
        || PasswordHash::new(hash).is_ok_and(|h| ["argon2id", "argon2i", "argon2d"].contains(&h.algorithm.as_str()))
}

/// The largest work an imported hash may ask for. Beyond these a single
/// sign-in would pin a hashing thread for seconds or minutes (an imported
/// `t=4294967295`, bcrypt cost 31), so such a hash is refused at import and
/// never computed at sign-in.
pub const MAX_ARGON2_M_KIB: u32 = 256 * 1024;
pub const MAX_ARGON2_T: u32 = 16;
pub const MAX_ARGON2_P: u32 = 8;
pub const MAX_BCRYPT_COST: u32 = 15;

/// Whether a stored hash's parameters are within the bounds above; why not.
pub fn within_bounds(hash: &str) -> Result<(), String> {
    if is_bcrypt(hash) {
        let cost: u32 = hash.get(4..6).and_then(|c| c.parse().ok()).ok_or("a malformed bcrypt cost")?;
        if !(4..=MAX_BCRYPT_COST).contains(&cost) {
            return Err(format!("bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST}"));
        }
        return Ok(());
    }
    let h = PasswordHash::new(hash).map_err(|_| "not a PHC string".to_string())?;
    let p = Params::try_from(&h).map_err(|e| format!("argon2 parameters: {e}"))?;
    if p.m_cost() > MAX_ARGON2_M_KIB || p.t_cost() > MAX_ARGON2_T || p.p_cost() > MAX_ARGON2_P {
        return Err(format!(
            "argon2 m={} t={} p={} exceed m<={MAX_ARGON2_M_KIB} t<={MAX_ARGON2_T} p<={MAX_ARGON2_P}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        ));
    }
    if h.hash.is_some_and(|o| o.len() > 64) {
        return Err("an argon2 output longer than 64 bytes".into());
    }
    Ok(())
}

/// Anything but argon2id with our parameters is hashed again at the next
/// successful sign-in (imported bcrypt, weaker argon2 settings).
pub fn needs_upgrade(hash: &str) -> bool {
    !hash.starts_with(&format!("$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}$"))
}

/// Verifies `password` against a stored hash: an argon2 PHC string (with
/// whatever parameters it records, within `within_bounds`) or bcrypt. A
/// malformed or out-of-bounds hash verifies false.
pub async fn verify(password: String, phc: String) -> bool {
    if let Err(why) = within_bounds(&phc) {
        tracing::warn!(reason = %why, "a stored password hash asks for more work than allowed; not computed");
        return false;
    }
    on_pool(move || {
        if is_bcrypt(&phc) {
            return bcrypt::verify(password.as_bytes(), &phc).unwrap_or(false);
        }
        let Ok(h) = PasswordHash::new(&phc) else { return false };
        let alg = match h.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            "argon2d" => Algorithm::Argon2d,
            _ => return false,
        };
        let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&h), h.salt, h.hash) else { return false };
        let mut out = vec![0u8; expected.len()];
        if compute_with(alg, params, password.as_bytes(), salt.as_ref(), &mut out).is_err() {
            return false;
        }
        subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_rounds_ahead_times_a_job() {
        // Two workers, 20 ms a job: the first two start at once, 50 ahead wait 25 rounds.
        assert_eq!(wait_for(0, 2, 20_000), Duration::ZERO);
        assert_eq!(wait_for(1, 2, 20_000), Duration::ZERO);
        assert_eq!(wait_for(2, 2, 20_000), Duration::from_millis(20));
        assert_eq!(wait_for(50, 2, 20_000), Duration::from_millis(500));
        // Before anything was measured, a job is guessed at 50 ms.
        assert_eq!(wait_for(4, 2, 0), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn out_of_bounds_hashes_are_never_computed() {
        let huge_t = "$argon2id$v=19$m=19456,t=4294967295,p=1$c29tZXNhbHRzb21lc2FsdA$dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q";
        assert!(within_bounds(huge_t).unwrap_err().contains("t=4294967295"));
        let huge_m =
            "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q";
        assert!(within_bounds(huge_m).is_err());
        let bcrypt31 = "$2b$31$abcdefghijklmnopqrstuuJ1aX9l3J5E7O0G8s0g6bAqk6y0uJb2C";
        assert!(within_bounds(bcrypt31).unwrap_err().contains("cost 31"));
        assert!(within_bounds("$2b$10$abcdefghijklmnopqrstuuJ1aX9l3J5E7O0G8s0g6bAqk6y0uJb2C").is_ok());
        let started = std::time::Instant::now();
        assert!(!verify("pw".into(), huge_t.into()).await);
        assert!(!verify("pw".into(), bcrypt31.into()).await);
        assert!(started.elapsed() < std::time::Duration::from_millis(100), "refused without computing");
        assert!(within_bounds(&hash("pw".into()).await.unwrap()).is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse".into()).await.unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse".into(), h.clone()).await);
        assert!(!verify("wrong horse".into(), h).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
        let policy = Policy { min_length: 8, reject_common: true };
        assert!(matches!(policy.check("short"), Err(PasswordError::TooShort(8))));
        assert!(matches!(policy.check("Password1"), Err(PasswordError::Common)));
        assert!(matches!(policy.check("qwertyuiop"), Err(PasswordError::Common)));
        assert!(policy.check("correct horse battery").is_ok());
        assert!(Policy { reject_common: false, ..policy }.check("password1").is_ok());
        assert!(matches!(hash(String::new()).await, Err(PasswordError::TooShort(_))));
        // Interoperable with the argon2 crate's own PHC handling, both ways.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("interop pass".into()).await.unwrap();
        assert!(Argon2::default().verify_password(b"interop pass", &PasswordHash::new(&ours).unwrap()).is_ok());
        let theirs = Argon2::default().hash_password(b"interop pass").unwrap().to_string();
        assert!(verify("interop pass".into(), theirs).await);
        // bcrypt (imported), and which hashes are hashed again at the next login.
        let b = bcrypt::hash("imported pass", 4).unwrap();
        assert!(is_bcrypt(&b) && is_supported(&b) && needs_upgrade(&b));
        assert!(verify("imported pass".into(), b.clone()).await);
        assert!(!verify("wrong pass".into(), b).await);
        assert!(!needs_upgrade(&ours));
        assert!(!is_supported("md5$abc"));
    }
}
