//! Decrypted bytes: zeroized on drop, never shown by `Debug`.

use std::fmt;
use std::ops::Deref;

use zeroize::Zeroizing;

/// The plaintext of a decrypted token.
///
/// Zeroized when dropped. `Debug` prints only its length (`Plaintext([REDACTED]; 460 bytes)`),
/// so a stray `{:?}` or `dbg!` cannot print a decrypted configuration and the secrets in it.
/// Read it through `Deref` (`&plaintext[..]`, `plaintext.as_slice()`, `plaintext.len()`).
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Takes the bytes out, still zeroized on drop.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl From<Zeroizing<Vec<u8>>> for Plaintext {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl Deref for Plaintext {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext([REDACTED]; {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_only() {
        let plaintext = Plaintext::from(Zeroizing::new(b"PAYMENT_GATEWAY_API_KEY=s3cr3t".to_vec()));
        let shown = format!("{plaintext:?} {plaintext:#?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("115"), "{shown}");
        assert_eq!(format!("{plaintext:?}"), "Plaintext([REDACTED]; 30 bytes)");
        assert_eq!(plaintext.as_slice(), b"PAYMENT_GATEWAY_API_KEY=s3cr3t");
    }
}
