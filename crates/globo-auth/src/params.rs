//! Named hashing profiles and the limits on what a stored hash may demand.

use std::fmt;
use std::str::FromStr;

use crate::AuthError;

/// The parameters globo hashes new passwords with: always Argon2id, version 0x13.
///
/// Obtained from a [`Profile`]; there is deliberately no way to build arbitrary parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    m_kib: u32,
    t: u32,
    p: u32,
    salt_len: usize,
    tag_len: usize,
}

impl HashParams {
    /// Memory cost in KiB (`m=`).
    pub fn memory_kib(&self) -> u32 {
        self.m_kib
    }

    /// Number of passes over memory (`t=`).
    pub fn iterations(&self) -> u32 {
        self.t
    }

    /// Degree of parallelism (`p=`, lanes).
    pub fn lanes(&self) -> u32 {
        self.p
    }

    /// Salt length in bytes.
    pub fn salt_len(&self) -> usize {
        self.salt_len
    }

    /// Tag (hash output) length in bytes.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// These parameters with memory and time costs raised to at least `m_kib` and `t`.
    pub(crate) fn at_least(self, m_kib: u32, t: u32) -> Self {
        Self { m_kib: self.m_kib.max(m_kib), t: self.t.max(t), ..self }
    }
}

/// A named set of Argon2id parameters for new hashes.
///
/// | profile | `m` (KiB) | `t` | `p` | salt | tag | use |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | [`Rfc9106LowMemory`](Profile::Rfc9106LowMemory) (default) | 65536 | 3 | 4 | 16 | 32 | RFC 9106 §4 second recommendation; the lab's (passlib/argon2-cffi) own defaults |
/// | [`OwaspMinimum`](Profile::OwaspMinimum) | 19456 | 2 | 1 | 16 | 32 | OWASP Password Storage Cheat Sheet minimum |
/// | [`TestOnlyInsecure`](Profile::TestOnlyInsecure) | 8 | 1 | 1 | 16 | 32 | **tests only**: trivially brute-forced |
///
/// The names (`rfc9106-low-memory`, `owasp-min`, `test-only-insecure`) are what
/// [`FromStr`] and [`Display`](fmt::Display) use, e.g. for a `--profile` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// RFC 9106's low-memory recommendation (Argon2id, m=64 MiB, t=3, p=4): the lab's setting,
    /// so users migrated from the lab need no rehash.
    #[default]
    Rfc9106LowMemory,
    /// OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1).
    OwaspMinimum,
    /// Almost no work (m=8 KiB, t=1, p=1). For test suites only: never use it for real users.
    TestOnlyInsecure,
}

impl Profile {
    /// Every profile, default first.
    pub const ALL: [Profile; 3] =
        [Profile::Rfc9106LowMemory, Profile::OwaspMinimum, Profile::TestOnlyInsecure];

    /// The profile's name (`rfc9106-low-memory`, `owasp-min`, `test-only-insecure`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Rfc9106LowMemory => "rfc9106-low-memory",
            Profile::OwaspMinimum => "owasp-min",
            Profile::TestOnlyInsecure => "test-only-insecure",
        }
    }

    /// The Argon2id parameters of this profile.
    pub fn params(self) -> HashParams {
        let (m_kib, t, p) = match self {
            Profile::Rfc9106LowMemory => (65536, 3, 4),
            Profile::OwaspMinimum => (19456, 2, 1),
            Profile::TestOnlyInsecure => (8, 1, 1),
        };
        HashParams { m_kib, t, p, salt_len: 16, tag_len: 32 }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| AuthError::UnknownProfile { name: s.to_owned() })
    }
}

/// Upper bounds on the work a stored hash may demand, checked before anything is allocated.
///
/// A users file is data: a hash with `m=4294967295` would make a login allocate 4 TiB. Hashes
/// beyond these bounds are refused with [`AuthError::HashExceedsLimits`](crate::AuthError).
/// The defaults ([`Limits::DEFAULT`]):
///
/// | bound | default | reference C library |
/// | --- | --- | --- |
/// | memory `m` | 8·`p` ..= 262144 KiB (256 MiB) | 8·`p` ..= 2³²−1 |
/// | iterations `t` | 1 ..= 16 | 1 ..= 2³²−1 |
/// | lanes `p` | 1 ..= 64 | 1 ..= 2²⁴−1 |
/// | salt | 8 ..= 64 bytes | 8 ..= 2³²−1 |
/// | tag | 4 ..= 64 bytes | 4 ..= 2³²−1 |
/// | `data=` | ..= 32 bytes | unlimited |
/// | whole PHC string | ..= 512 bytes | — |
///
/// Every profile fits well within them; the lab's own hashes (m=65536, t=3, p=4) use a quarter
/// of the memory bound. The reference test suite's 1 GiB hashes (`m=1048576`) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_m_kib: u32,
    pub(crate) max_t: u32,
    pub(crate) max_p: u32,
}

impl Limits {
    /// The default bounds (see the table above).
    pub const DEFAULT: Limits = Limits { max_m_kib: 262_144, max_t: 16, max_p: 64 };

    /// Smallest salt accepted, in bytes (the reference library's minimum).
    pub const MIN_SALT_LEN: usize = 8;
    /// Largest salt accepted, in bytes.
    pub const MAX_SALT_LEN: usize = 64;
    /// Smallest tag accepted, in bytes (the reference library's minimum).
    pub const MIN_TAG_LEN: usize = 4;
    /// Largest tag accepted, in bytes.
    pub const MAX_TAG_LEN: usize = 64;
    /// Largest `data=` (associated data) accepted, in bytes.
    pub const MAX_DATA_LEN: usize = argon2::AssociatedData::MAX_LEN;
    /// Longest PHC string accepted, in bytes.
    pub const MAX_PHC_LEN: usize = 512;

    /// Sets the largest memory cost accepted, in KiB.
    ///
    /// It is never lowered below what the default profile needs (65536 KiB), so a store can
    /// always verify its own hashes.
    #[must_use]
    pub fn with_max_memory_kib(mut self, max_m_kib: u32) -> Self {
        self.max_m_kib = max_m_kib.max(Profile::Rfc9106LowMemory.params().m_kib);
        self
    }

    /// The largest memory cost accepted, in KiB.
    pub fn max_memory_kib(&self) -> u32 {
        self.max_m_kib
    }

    /// The largest iteration count accepted.
    pub fn max_iterations(&self) -> u32 {
        self.max_t
    }

    /// The largest number of lanes accepted.
    pub fn max_lanes(&self) -> u32 {
        self.max_p
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
