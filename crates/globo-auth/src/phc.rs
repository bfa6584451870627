//! Argon2 PHC strings: parsing with the reference C library's rules, hashing and verifying.
//!
//! globo parses hash strings itself instead of using `password-hash`, because the reference
//! decoder (used by argon2-cffi and therefore passlib) and the `argon2` crate's decoder
//! disagree on inputs that occur in real users files; see the crate docs, "Compatibility".

use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::pepper::{self, Peppers};
use crate::{AuthError, HashParams, Limits, Profile};

/// A parsed and bounds-checked Argon2 PHC string. Holding one means hashing with it is safe.
///
/// `Debug` shows the parameters and the lengths of the salt and tag, never their bytes: an
/// unmasked tag is what a pepper protects (and the tag is zeroized on drop).
#[derive(Clone)]
pub(crate) struct ParsedHash {
    algorithm: Algorithm,
    version: Version,
    m_kib: u32,
    t: u32,
    p: u32,
    data: Vec<u8>,
    salt: Vec<u8>,
    tag: Zeroizing<Vec<u8>>,
    /// The pepper version the tag is masked with (`keyid=`), if any.
    keyid: Option<String>,
    /// The text before the last `$` without `keyid=`: what the pepper's keystream covers.
    head: String,
}

impl std::fmt::Debug for ParsedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedHash")
            .field("algorithm", &self.algorithm)
            .field("version", &self.version)
            .field("m_kib", &self.m_kib)
            .field("t", &self.t)
            .field("p", &self.p)
            .field("data_len", &self.data.len())
            .field("salt_len", &self.salt.len())
            .field("tag_len", &self.tag.len())
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::MalformedHash { reason }
}

fn exceeds(parameter: &'static str, value: u64, max: u64) -> AuthError {
    AuthError::HashExceedsLimits { parameter, value, max }
}

/// A decimal `u32` in minimal form (no sign, no leading zeros), as the reference decoder wants.
fn decimal(text: &str, reason: &'static str) -> Result<u32, AuthError> {
    let minimal = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !minimal {
        return Err(malformed(reason));
    }
    text.parse::<u32>().map_err(|_| malformed(reason))
}

/// `name=value` with the expected name, or an error.
fn field<'a>(part: Option<&'a str>, name: &str) -> Option<&'a str> {
    part.and_then(|p| p.strip_prefix(name)).and_then(|p| p.strip_prefix('='))
}

fn b64(text: &str, reason: &'static str) -> Result<Vec<u8>, AuthError> {
    B64.decode(text).map_err(|_| malformed(reason))
}

/// The globo pepper version a record's parameters name (`keyid=` of
/// [`VERSION_ID_BYTES`](pepper::VERSION_ID_BYTES) bytes), read from its text alone: for
/// entries that do not parse, which may still name a version (they must keep it from
/// retirement). A foreign `keyid` is not a globo version.
pub(crate) fn keyid_of(record: &str) -> Option<&str> {
    record
        .split('$')
        .find(|part| part.starts_with("m="))?
        .split(',')
        .find_map(|param| param.strip_prefix("keyid="))
        .filter(|id| B64.decode(id).is_ok_and(|bytes| bytes.len() == pepper::VERSION_ID_BYTES))
}

impl ParsedHash {
    /// Parses `hash` and checks it against `limits`, before anything is allocated for hashing.
    pub(crate) fn parse(hash: &str, limits: &Limits) -> Result<Self, AuthError> {
        if hash.len() > Limits::MAX_PHC_LEN {
            return Err(exceeds(
                "hash string length (bytes)",
                hash.len() as u64,
                Limits::MAX_PHC_LEN as u64,
            ));
        }
        let mut parts = hash.split('$');
        if parts.next() != Some("") {
            return Err(malformed("it must start with '$'"));
        }
        let algorithm = match parts.next() {
            Some("argon2id") => Algorithm::Argon2id,
            Some("argon2i") => Algorithm::Argon2i,
            Some("argon2d") => Algorithm::Argon2d,
            _ => {
                return Err(AuthError::UnsupportedHash {
                    reason: "the algorithm is not argon2id, argon2i or argon2d",
                });
            }
        };
        let mut next = parts.next();
        // A missing `v=` means version 0x10, as in the PHC format spec and the reference code.
        let version = match field(next, "v") {
            Some(v) => {
                next = parts.next();
                match decimal(v, "the version is not a decimal number")? {
                    0x10 => Version::V0x10,
                    0x13 => Version::V0x13,
                    _ => {
                        return Err(AuthError::UnsupportedHash {
                            reason: "the version is neither 16 nor 19",
                        });
                    }
                }
            }
            None => Version::V0x10,
        };
        let params = next.ok_or_else(|| malformed("the parameters are missing"))?;
        let mut fields = params.split(',');
        let order =
            "the parameters must be m, t and p in this order, then optionally keyid and data";
        let m_kib = decimal(field(fields.next(), "m").ok_or(malformed(order))?, "m is not a u32")?;
        let t = decimal(field(fields.next(), "t").ok_or(malformed(order))?, "t is not a u32")?;
        let p = decimal(field(fields.next(), "p").ok_or(malformed(order))?, "p is not a u32")?;
        let mut rest = fields.next();
        let mut keyid = None;
        if let Some(encoded) = field(rest, "keyid") {
            // A globo version id is the key's 6-byte fingerprint; the canonical text is kept
            // as the id (the decoder refuses any other spelling of the same bytes).
            if b64(encoded, "keyid is not valid base64")?.len() != pepper::VERSION_ID_BYTES {
                return Err(AuthError::UnsupportedHash {
                    reason: "keyid= is not a globo pepper version id (6 bytes)",
                });
            }
            keyid = Some((encoded, encoded.to_owned()));
            rest = fields.next();
        }
        let mut data = Vec::new();
        if let Some(encoded) = field(rest, "data") {
            data = b64(encoded, "data is not valid base64")?;
            rest = fields.next();
        }
        if rest.is_some() {
            return Err(malformed(order));
        }
        if t < 1 {
            return Err(malformed("t must be at least 1"));
        }
        if p < 1 {
            return Err(malformed("p must be at least 1"));
        }
        if u64::from(m_kib) < 8 * u64::from(p) {
            return Err(malformed("m must be at least 8 times p"));
        }
        if m_kib > limits.max_m_kib {
            return Err(exceeds("memory (KiB)", m_kib.into(), limits.max_m_kib.into()));
        }
        if t > limits.max_t {
            return Err(exceeds("iterations", t.into(), limits.max_t.into()));
        }
        if p > limits.max_p {
            return Err(exceeds("lanes", p.into(), limits.max_p.into()));
        }
        if data.len() > Limits::MAX_DATA_LEN {
            return Err(exceeds(
                "data length (bytes)",
                data.len() as u64,
                Limits::MAX_DATA_LEN as u64,
            ));
        }
        let salt = b64(
            parts.next().ok_or(malformed("the salt is missing"))?,
            "the salt is not valid base64",
        )?;
        let tag = b64(
            parts.next().ok_or(malformed("the hash is missing"))?,
            "the hash is not valid base64",
        )?;
        if parts.next().is_some() {
            return Err(malformed("it has more than five '$'-separated fields"));
        }
        if salt.len() < Limits::MIN_SALT_LEN {
            return Err(malformed("the salt is shorter than 8 bytes"));
        }
        if salt.len() > Limits::MAX_SALT_LEN {
            return Err(exceeds(
                "salt length (bytes)",
                salt.len() as u64,
                Limits::MAX_SALT_LEN as u64,
            ));
        }
        if tag.len() < Limits::MIN_TAG_LEN {
            return Err(malformed("the hash is shorter than 4 bytes"));
        }
        if tag.len() > Limits::MAX_TAG_LEN {
            return Err(exceeds(
                "hash length (bytes)",
                tag.len() as u64,
                Limits::MAX_TAG_LEN as u64,
            ));
        }
        // Validated above: the text before the last '$' holds `,keyid=<encoded>` once, in
        // the parameters (no other field can contain "keyid=").
        let head = &hash[..hash.rfind('$').unwrap_or(0)];
        let (head, keyid) = match keyid {
            Some((encoded, id)) => (head.replacen(&format!(",keyid={encoded}"), "", 1), Some(id)),
            None => (head.to_owned(), None),
        };
        let tag = Zeroizing::new(tag);
        Ok(Self { algorithm, version, m_kib, t, p, data, salt, tag, keyid, head })
    }

    /// The pepper version this hash's tag is masked with, if any.
    pub(crate) fn pepper_version(&self) -> Option<&str> {
        self.keyid.as_deref()
    }

    /// This hash with its tag unmasked: itself when it is not peppered, else unmasked with
    /// its version from `peppers` ([`AuthError::PepperUnavailable`] when there is none).
    pub(crate) fn unpeppered(&self, peppers: Option<&Peppers>) -> Result<Self, AuthError> {
        let mut plain = self.clone();
        if let Some(id) = plain.keyid.take() {
            let peppers =
                peppers.ok_or_else(|| AuthError::PepperUnavailable { version: id.clone() })?;
            peppers.apply(&id, &self.head, &mut plain.tag)?;
        }
        Ok(plain)
    }

    /// The record text of this (unpeppered) hash peppered with `peppers`' current version:
    /// `keyid=` inserted after `p=`, the tag masked. The rest of the text is kept as it was.
    pub(crate) fn peppered_text(&self, peppers: &Peppers) -> Result<String, AuthError> {
        if self.keyid.is_some() {
            return Err(malformed("the hash is peppered already"));
        }
        let id = peppers.current_version();
        let mut tag = Zeroizing::new(self.tag.clone());
        peppers.apply(id, &self.head, &mut tag)?;
        let keyid = format!("keyid={id}");
        let head: Vec<String> = self
            .head
            .split('$')
            .map(|part| {
                if part.starts_with("m=") {
                    let mut params: Vec<&str> = part.split(',').collect();
                    params.insert(params.len().min(3), &keyid);
                    params.join(",")
                } else {
                    part.to_owned()
                }
            })
            .collect();
        Ok(format!("{}${}", head.join("$"), B64.encode(tag.as_slice())))
    }

    /// Runs Argon2 over `password` with this hash's parameters and salt; `out` gets the tag.
    fn compute(&self, password: &[u8], out: &mut [u8]) -> Result<(), AuthError> {
        self.compute_with_secret(&[], password, out)
    }

    /// [`ParsedHash::compute`] with an Argon2 secret; only the RFC 9106 vectors use one.
    fn compute_with_secret(
        &self,
        secret: &[u8],
        password: &[u8],
        out: &mut [u8],
    ) -> Result<(), AuthError> {
        let argon2_error = |e: argon2::Error| AuthError::Argon2 { source: Box::new(e) as Box<_> };
        let data = AssociatedData::new(&self.data).map_err(argon2_error)?;
        let params = ParamsBuilder::new()
            .m_cost(self.m_kib)
            .t_cost(self.t)
            .p_cost(self.p)
            .output_len(out.len())
            .data(data)
            .build()
            .map_err(argon2_error)?;
        let context = if secret.is_empty() {
            Argon2::new(self.algorithm, self.version, params)
        } else {
            Argon2::new_with_secret(secret, self.algorithm, self.version, params)
                .map_err(argon2_error)?
        };
        context.hash_password_into(password, &self.salt, out).map_err(argon2_error)
    }

    /// The memory cost of checking a password against it, in KiB (`m=`).
    pub(crate) fn memory_kib(&self) -> u32 {
        self.m_kib
    }

    /// Whether `password` matches, compared in constant time.
    pub(crate) fn matches(&self, password: &[u8]) -> Result<bool, AuthError> {
        // A masked tag never matches: unmask it first (`unpeppered`).
        if let Some(id) = &self.keyid {
            return Err(AuthError::PepperUnavailable { version: id.clone() });
        }
        let mut out = Zeroizing::new(vec![0u8; self.tag.len()]);
        self.compute(password, &mut out)?;
        Ok(bool::from(out.as_slice().ct_eq(&self.tag)))
    }

    /// A hash with this one's algorithm, version, costs and lengths but a random salt and tag:
    /// checking a password against it costs what checking against `self` costs, and fails.
    pub(crate) fn dummy_like(&self) -> Result<Self, AuthError> {
        Ok(Self {
            algorithm: self.algorithm,
            version: self.version,
            m_kib: self.m_kib,
            t: self.t,
            p: self.p,
            data: self.data.clone(),
            salt: random(self.salt.len())?.to_vec(),
            tag: random(self.tag.len())?,
            keyid: None,
            head: String::new(),
        })
    }

    /// The parameters to rehash this hash with: `policy`'s, but never a lower memory or time
    /// cost than this hash already has (a rehash for another variant must not weaken it).
    pub(crate) fn rehash_params(&self, policy: HashParams) -> HashParams {
        policy.at_least(self.m_kib, self.t)
    }

    /// Whether this hash is weaker than, or different in kind from, what `params` produces.
    pub(crate) fn is_obsolete(&self, params: &HashParams) -> bool {
        self.algorithm != Algorithm::Argon2id
            || self.version != Version::V0x13
            || self.m_kib < params.memory_kib()
            || self.t < params.iterations()
            || self.salt.len() < params.salt_len()
            || self.tag.len() < params.tag_len()
            || !self.data.is_empty()
    }
}

/// Random bytes from the operating system.
fn random(len: usize) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random { source: Box::new(e) })?;
    Ok(bytes)
}

/// The text of a new hash up to and including its salt.
fn head(params: &HashParams, salt: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}",
        params.memory_kib(),
        params.iterations(),
        params.lanes(),
        B64.encode(salt),
    )
}

fn encode(params: &HashParams, salt: &[u8], tag: &[u8]) -> String {
    format!("{}${}", head(params, salt), B64.encode(tag))
}

/// Hashes `password` with `profile`'s parameters and a fresh random salt.
///
/// Returns a PHC string such as `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`, which
/// argon2-cffi and passlib verify. The password is hashed exactly as given (no normalisation,
/// no truncation): pass [`normalize_password`](crate::normalize_password)'s NFKC form, as
/// [`UserStore::register`](crate::UserStore::register) does after applying the password
/// policy.
///
/// **Cost:** blocks for one Argon2 run and allocates its memory cost, `m` KiB (64 MiB with
/// the default profile); with the `parallel` feature its `p` lanes run on rayon's global
/// thread pool, started at the first use (see the [crate docs](crate#what-a-call-costs)).
pub fn hash_password(password: impl AsRef<[u8]>, profile: Profile) -> Result<String, AuthError> {
    hash_with_params(password.as_ref(), &profile.params())
}

/// Hashes `password` with `params` (always Argon2id v0x13) and a fresh random salt.
pub(crate) fn hash_with_params(password: &[u8], params: &HashParams) -> Result<String, AuthError> {
    Ok(hash_parsed(password, params)?.text())
}

/// [`hash_with_params`], peppered with `peppers`' current version when there are peppers.
pub(crate) fn new_record(
    password: &[u8],
    params: &HashParams,
    peppers: Option<&Peppers>,
) -> Result<String, AuthError> {
    let parsed = hash_parsed(password, params)?;
    match peppers {
        Some(peppers) => parsed.peppered_text(peppers),
        None => Ok(parsed.text()),
    }
}

fn hash_parsed(password: &[u8], params: &HashParams) -> Result<ParsedHash, AuthError> {
    let salt = random(params.salt_len())?;
    let mut parsed = ParsedHash {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        m_kib: params.memory_kib(),
        t: params.iterations(),
        p: params.lanes(),
        data: Vec::new(),
        salt: salt.to_vec(),
        tag: Zeroizing::new(Vec::new()),
        keyid: None,
        head: head(params, &salt),
    };
    let mut tag = Zeroizing::new(vec![0u8; params.tag_len()]);
    parsed.compute(password, &mut tag)?;
    parsed.tag = tag;
    Ok(parsed)
}

impl ParsedHash {
    /// The PHC text of an unpeppered hash made by [`hash_parsed`].
    fn text(&self) -> String {
        format!("{}${}", self.head, B64.encode(&self.tag))
    }
}

/// A hash string with `params` and random salt and tag: the hash of no password at all.
///
/// Verifying against it costs exactly one Argon2 run with `params` (like a real user's hash)
/// and always fails, yet making it costs no Argon2 run.
pub(crate) fn dummy_hash(params: &HashParams) -> Result<String, AuthError> {
    let salt = random(params.salt_len())?;
    let tag = random(params.tag_len())?;
    Ok(encode(params, &salt, &tag))
}

/// Checks `password` against a PHC `hash` string, within [`Limits::DEFAULT`].
///
/// `Ok(())` when it matches; [`AuthError::InvalidCredentials`] when it does not; a
/// `MalformedHash`, `UnsupportedHash` or `HashExceedsLimits` error when the hash cannot be
/// used. Accepts Argon2id, Argon2i and Argon2d, versions 0x10 and 0x13. A peppered record
/// (`keyid=`) is [`AuthError::PepperUnavailable`]: verify it through a
/// [`UserStore`](crate::UserStore) given the pepper ([`UserStore::with_peppers`](crate::UserStore::with_peppers)).
///
/// **Cost:** blocks for one Argon2 run and allocates the hash's memory cost, `m` KiB (at most
/// [`Limits::DEFAULT`]'s 256 MiB, checked before allocating); with the `parallel` feature its `p` lanes run on rayon's global
/// thread pool, started at the first use (see the [crate docs](crate#what-a-call-costs)).
pub fn verify_password(password: impl AsRef<[u8]>, hash: &str) -> Result<(), AuthError> {
    verify_password_with_limits(password, hash, &Limits::DEFAULT)
}

/// [`verify_password`] with explicit [`Limits`]: blocks for one Argon2 run and allocates up
/// to `limits`' memory bound (checked before allocating).
pub fn verify_password_with_limits(
    password: impl AsRef<[u8]>,
    hash: &str,
    limits: &Limits,
) -> Result<(), AuthError> {
    let parsed = ParsedHash::parse(hash, limits)?.unpeppered(None)?;
    if parsed.matches(password.as_ref())? { Ok(()) } else { Err(AuthError::InvalidCredentials) }
}

/// Whether `hash` should be replaced by a fresh hash made with `profile`: it uses another
/// Argon2 variant or version, less memory, fewer iterations, a shorter salt or tag, or `data=`.
///
/// Higher parameters are never downgraded. Errors are those of [`verify_password`].
pub fn is_hash_obsolete(hash: &str, profile: Profile) -> Result<bool, AuthError> {
    Ok(ParsedHash::parse(hash, &Limits::DEFAULT)?.is_obsolete(&profile.params()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 9106 §5 and the reference `kats/` files, through globo's own Argon2 call.
    #[test]
    fn rfc9106_known_answers() {
        let vectors = globo_testkit::load_vectors("argon2/rfc9106.json");
        let vectors = vectors.as_array().unwrap();
        assert_eq!(vectors.len(), 6);
        for v in vectors {
            let text = |k: &str| v[k].as_str().unwrap().to_owned();
            let number = |k: &str| u32::try_from(v[k].as_u64().unwrap()).unwrap();
            let parsed = ParsedHash {
                algorithm: match text("variant").as_str() {
                    "argon2d" => Algorithm::Argon2d,
                    "argon2i" => Algorithm::Argon2i,
                    _ => Algorithm::Argon2id,
                },
                version: if number("version") == 16 { Version::V0x10 } else { Version::V0x13 },
                m_kib: number("m_kib"),
                t: number("t"),
                p: number("p"),
                data: unhex(&text("ad_hex")),
                salt: unhex(&text("salt_hex")),
                tag: Zeroizing::new(unhex(&text("tag_hex"))),
                keyid: None,
                head: String::new(),
            };
            let mut out = vec![0u8; parsed.tag.len()];
            parsed
                .compute_with_secret(
                    &unhex(&text("secret_hex")),
                    &unhex(&text("password_hex")),
                    &mut out,
                )
                .unwrap();
            assert_eq!(out, *parsed.tag, "{}", text("source"));
        }
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn peppers() -> Peppers {
        Peppers::parse(&secrecy::SecretString::from(KEY)).unwrap()
    }

    /// keyid (the version's 8-character id) goes right after `p=`, before `data=`; the rest
    /// of the text (a missing `v=` included) is kept, and unmasking gives back the tag that
    /// verifies.
    #[test]
    fn peppering_inserts_keyid_after_p_and_keeps_the_rest_of_the_text() {
        let peppers = peppers();
        let id = peppers.current_version().to_owned();
        let cases = [
            // From the PHC vectors (argon2 crate's tests): version 16 without v=, and data=.
            (
                "password",
                "$argon2i$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ",
            ),
            (
                "password",
                "$argon2d$v=16$m=32,t=2,p=3,data=Dw8PDw8P$AAAAAAAAAAA$KnH4gniiaFnDvlA1xev3yovC4cnrrI6tnHOYtmja90o",
            ),
        ];
        let expected_heads = [
            format!("$argon2i$m=65536,t=2,p=1,keyid={id}$c29tZXNhbHQ$"),
            format!("$argon2d$v=16$m=32,t=2,p=3,keyid={id},data=Dw8PDw8P$AAAAAAAAAAA$"),
        ];
        for ((password, hash), head) in cases.into_iter().zip(expected_heads) {
            let parsed = ParsedHash::parse(hash, &Limits::DEFAULT).unwrap();
            assert!(parsed.matches(password.as_bytes()).unwrap(), "{hash}");
            let record = parsed.peppered_text(&peppers).unwrap();
            assert!(record.starts_with(&head), "{record}");
            assert_ne!(record.rsplit('$').next(), hash.rsplit('$').next());
            let peppered = ParsedHash::parse(&record, &Limits::DEFAULT).unwrap();
            assert_eq!(peppered.pepper_version(), Some(id.as_str()));
            assert!(
                peppered.matches(password.as_bytes()).is_err(),
                "a masked tag is never compared"
            );
            let plain = peppered.unpeppered(Some(&peppers)).unwrap();
            assert_eq!(plain.tag, parsed.tag);
            assert_eq!(plain.head, parsed.head);
            assert!(plain.matches(password.as_bytes()).unwrap());
            assert!(!plain.matches(b"wrong").unwrap());
            assert!(matches!(
                peppered.unpeppered(None),
                Err(AuthError::PepperUnavailable { version }) if version == id
            ));
            // Peppering twice is refused rather than nesting masks.
            assert!(peppered.peppered_text(&peppers).is_err());
        }
    }

    /// A keyid that is not 6 bytes (the PHC vectors' 0xF0F0F0F0) is not a globo version id
    /// and stays unsupported; a 6-byte one parses and is the version's id as written.
    #[test]
    fn keyid_must_be_a_version_id() {
        let foreign = "$argon2d$v=19$m=65536,t=2,p=1,keyid=8PDw8A$YzI5dFpYTmhiSFFBQUFBQUFBQUFBQQ$Jxy74cswY2mq9y+u+iJcJy8EqOp4t/C7DWDzGwGB3IM";
        assert!(matches!(
            ParsedHash::parse(foreign, &Limits::DEFAULT),
            Err(AuthError::UnsupportedHash { .. })
        ));
        let ours = foreign.replace("keyid=8PDw8A", "keyid=djIwMDAx");
        let parsed = ParsedHash::parse(&ours, &Limits::DEFAULT).unwrap();
        assert_eq!(parsed.pepper_version(), Some("djIwMDAx"));
        assert_eq!(parsed.head, "$argon2d$v=19$m=65536,t=2,p=1$YzI5dFpYTmhiSFFBQUFBQUFBQUFBQQ");
    }

    /// Issue 13 review, point 5: `Debug` of a parsed peppered hash shows neither the salt
    /// nor the tag (masked or unmasked). Before, the derived `Debug` printed both as bytes.
    #[test]
    fn debug_shows_no_salt_or_tag() {
        let peppers = peppers();
        let hash = hash_with_params(b"password", &Profile::TestOnlyInsecure.params()).unwrap();
        let parsed = ParsedHash::parse(&hash, &Limits::DEFAULT).unwrap();
        let record = parsed.peppered_text(&peppers).unwrap();
        let peppered = ParsedHash::parse(&record, &Limits::DEFAULT).unwrap();
        let plain = peppered.unpeppered(Some(&peppers)).unwrap();
        for shown in [&parsed, &peppered, &plain] {
            let debug = format!("{shown:?}");
            for bytes in [&plain.salt, &*plain.tag, &*peppered.tag] {
                let dec = format!("{bytes:?}");
                let inner = &dec[1..dec.len() - 1];
                assert!(!debug.contains(inner), "{debug}");
            }
            assert!(!debug.contains(&B64.encode(&plain.salt)), "{debug}");
            assert!(debug.contains("tag_len: 32"), "{debug}");
        }
    }
}
