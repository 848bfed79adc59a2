//! Cryptography: random tokens and hashes, sealing with the master key, signing
//! keys and JWTs, password hashing. The only place that touches jsonwebtoken,
//! argon2 or the key crates.

pub mod jws;
pub mod keygen;
pub mod keys;
pub mod password;
pub mod random;
pub mod seal;
