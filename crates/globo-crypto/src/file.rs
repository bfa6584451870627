//! Encrypting files, decrypting them into memory only.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::fernet::{self, Opened, StreamError, Threads};
use crate::time::unix_now;
use crate::{CryptoError, Key, KeySet, Plaintext, TokenInfo};

/// Reads the token stored in a ciphertext file.
///
/// The file holds the token's ASCII characters. One trailing `\n` is removed (editors and
/// `echo` add one); nothing else is: any other whitespace or junk makes the token invalid.
/// Python `cryptography` is more lenient (its base64 decoder skips every character outside the
/// alphabet, so it also accepts newlines inside the token); globo accepts only what is
/// unambiguous. A missing file is [`CryptoError::CiphertextNotFound`]; a file that is not text
/// is [`CryptoError::Decryption`].
///
/// The file must be a regular file (or a link to one) of at most 512 MiB (the token of a
/// plaintext of about 384 MiB): a FIFO, a device or a folder is refused without a read (a FIFO
/// with no writer would block the read forever), and a larger file is refused before it is
/// read (both an I/O error naming the file). [`decrypt_file_to_memory`] and
/// [`inspect_file`] have neither limit (they stream the token, and read pipes too): use them
/// to decrypt or inspect a file. Blocks on file I/O and allocates the file's size once.
pub fn read_token_file(path: &Path) -> Result<String, CryptoError> {
    let (mut bytes, _) = match globo_fs::read_small_regular(path, MAX_UNSIZED_TOKEN) {
        Ok(Some(read)) => read,
        Ok(None) => return Err(CryptoError::CiphertextNotFound { path: path.to_path_buf() }),
        Err(e) => return Err(CryptoError::io("read", path, e.into_io_error())),
    };
    // Ciphertext: the buffer is moved out of its zeroizing wrapper, not copied.
    let mut text =
        String::from_utf8(std::mem::take(&mut *bytes)).map_err(|_| CryptoError::Decryption)?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Opens a ciphertext file for reading.
fn open_ciphertext(path: &Path) -> Result<File, CryptoError> {
    File::open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => CryptoError::CiphertextNotFound { path: path.to_path_buf() },
        _ => CryptoError::io("read", path, e),
    })
}

/// Whether `reader` yields exactly `expected`, read in 64 KiB pieces (zeroized after use).
fn same_content(reader: &mut impl std::io::Read, expected: &[u8]) -> std::io::Result<bool> {
    let mut buf = Zeroizing::new(vec![0u8; 64 << 10]);
    let mut rest = expected;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(rest.is_empty());
        }
        match rest.split_at_checked(n) {
            Some((head, tail)) if head == &buf[..n] => rest = tail,
            _ => return Ok(false),
        }
    }
}

/// Whether two paths name the same existing file (after resolving links).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Encrypts the bytes of `plaintext` into a token written to `ciphertext` (atomically, mode
/// `0600`). The plaintext file is left in place; see [`remove_plaintext_verified`].
///
/// Refuses ([`CryptoError::KeyFileProtected`]) to write over a file that holds a Fernet key
/// (an output named `secret.key` by mistake), and ([`CryptoError::SameFile`]) over its own
/// plaintext.
///
/// Blocks on file I/O. Memory stays a few 96 KiB chunks whatever the file's size. With the
/// `parallel` feature, a file of 1 MiB or more (or a pipe, whose size is unknown) is encrypted
/// on a scoped thread while this one encodes and writes.
pub fn encrypt_file(key: &Key, plaintext: &Path, ciphertext: &Path) -> Result<(), CryptoError> {
    if same_file(plaintext, ciphertext) {
        return Err(CryptoError::SameFile { path: plaintext.to_path_buf() });
    }
    if crate::KeyFile::load(ciphertext).is_ok() {
        return Err(CryptoError::KeyFileProtected { path: ciphertext.to_path_buf() });
    }
    let mut input = match File::open(plaintext) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(CryptoError::PlaintextNotFound { path: plaintext.to_path_buf() });
        }
        Err(e) => return Err(CryptoError::io("read", plaintext, e)),
    };
    // A pipe or device has no size: full chunks, pipelined.
    let size =
        input.metadata().ok().filter(|m| m.is_file()).and_then(|m| usize::try_from(m.len()).ok());
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).map_err(|_| CryptoError::Random)?;
    let out = globo_fs::AtomicFile::create(ciphertext)?;
    let sink = fernet::WriteSink::new(out, fernet::CHUNK);
    // Streamed: the plaintext is read in chunks and the token written as it is made, so memory
    // stays bounded whatever the file's size; the file replaces `ciphertext` only once complete.
    let threads = Threads::for_len(size);
    let out = fernet::encrypt_stream(key, &iv, unix_now(), &mut input, sink, size, threads)
        .map_err(|e| match e {
            StreamError::Read(e) => CryptoError::io("read", plaintext, e),
            StreamError::Write(e) => CryptoError::io("write", ciphertext, e),
            StreamError::TooLarge => CryptoError::TooLarge,
            StreamError::Decryption | StreamError::Pipeline => CryptoError::io(
                "encrypt",
                plaintext,
                std::io::Error::other("the encryption pipeline stopped"),
            ),
        })?
        .into_inner();
    out.commit()?;
    Ok(())
}

/// Decrypts a ciphertext file into memory (zeroized on drop); nothing is written to disk.
///
/// The file is read once, in pieces, and decoded into a buffer of exactly the ciphertext's size
/// (the text of the token is never held whole), which is authenticated over the whole token and
/// only then decrypted in place: peak memory is about the size of the plaintext. The same
/// strictness as [`read_token_file`] and [`crate::decrypt`] applies.
///
/// Blocks on file I/O; allocates the plaintext's size (a pipe or a device, which has no size,
/// is read whole first, up to 512 MiB). Uses threads as [`crate::decrypt`] does.
pub fn decrypt_file_to_memory(keys: &impl KeySet, path: &Path) -> Result<Plaintext, CryptoError> {
    decrypt_file(keys.keys(), path, None).map(|opened| Plaintext::from(opened.plaintext))
}

/// Decrypts a ciphertext file with the one decoder (see `fernet::decrypt`).
fn decrypt_file(keys: &[Key], path: &Path, age: Option<(u64, u64)>) -> Result<Opened, CryptoError> {
    let file = open_ciphertext(path)?;
    let metadata = file.metadata().map_err(|e| CryptoError::io("read", path, e))?;
    if !metadata.is_file() {
        // A pipe or a device (`/dev/stdin`) has no length to size the buffer with: read it
        // whole, within a bound.
        return fernet::open_token(keys, &read_unsized_token(file, path)?, age);
    }
    let len = usize::try_from(metadata.len()).map_err(|_| CryptoError::TooLarge)?;
    // A token is a multiple of 4 characters; one more can only be the trailing newline.
    let newline = len % 4 == 1;
    let chars = if newline { len - 1 } else { len };
    let threads = Threads::for_len(Some(chars / 4 * 3));
    let source = fernet::ReaderSource::new(file, newline);
    fernet::decrypt_stream(keys, age, chars, source, threads).map_err(|e| match e {
        StreamError::Read(e) => CryptoError::io("read", path, e),
        _ => CryptoError::Decryption,
    })
}

/// Decrypts a ciphertext file into memory, refusing a token older than `max_age_secs` seconds.
/// Blocks, allocates and uses threads as [`decrypt_file_to_memory`] does.
pub fn decrypt_file_with_max_age(
    keys: &impl KeySet,
    path: &Path,
    max_age_secs: u64,
) -> Result<Plaintext, CryptoError> {
    decrypt_file(keys.keys(), path, Some((max_age_secs, unix_now())))
        .map(|opened| Plaintext::from(opened.plaintext))
}

/// The file [`remove_plaintext_verified`] would delete for `plaintext`: `plaintext` itself, or,
/// for a symbolic link, the regular file at its end (see [`globo_fs::resolve_link`]).
///
/// Refused before anything is written, so a caller can check it before encrypting: a missing
/// file ([`CryptoError::PlaintextNotFound`]), anything but a regular file (a pipe such as
/// `/dev/stdin`, a FIFO, a device, a folder: [`CryptoError::NotRegularFile`]), a file with
/// other names ([`CryptoError::PlaintextHardLinked`]: deleting one name would not delete the
/// plaintext), and a link that may not be followed (dangling, a loop, a link on the path owned
/// by someone other than root or the file's owner: [`CryptoError::File`]). Blocks on file I/O.
pub fn removable_plaintext(plaintext: &Path) -> Result<PathBuf, CryptoError> {
    open_removable(plaintext).map(|file| file.path().to_path_buf())
}

/// Opens the plaintext to delete, once, by descriptor ([`globo_fs::RemovableFile`]).
fn open_removable(plaintext: &Path) -> Result<globo_fs::RemovableFile, CryptoError> {
    match std::fs::metadata(plaintext) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Err(CryptoError::NotRegularFile { path: plaintext.to_path_buf() }),
        Err(e)
            if e.kind() == ErrorKind::NotFound && std::fs::symlink_metadata(plaintext).is_err() =>
        {
            return Err(CryptoError::PlaintextNotFound { path: plaintext.to_path_buf() });
        }
        // A dangling link or a loop: the walk says which.
        Err(_) => {}
    }
    let file = globo_fs::RemovableFile::open(plaintext)?;
    if file.links() > 1 {
        return Err(CryptoError::PlaintextHardLinked {
            path: plaintext.to_path_buf(),
            links: file.links(),
        });
    }
    Ok(file)
}

/// Deletes the plaintext once `ciphertext`, read back from disk, decrypts to exactly its bytes;
/// returns the file deleted.
///
/// Call it after [`encrypt_file`] (which leaves the ciphertext flushed to disk). The file
/// deleted is the one [`removable_plaintext`] names: when `plaintext` is a symbolic link, the
/// regular file at its end is checked and deleted (deleting the link alone would leave the
/// plaintext on disk) and the link stays; a pipe, a FIFO or a device is never deleted
/// ([`CryptoError::NotRegularFile`]), nor a file with other names
/// ([`CryptoError::PlaintextHardLinked`]). The file is opened once; the comparison reads that
/// descriptor, and the name is deleted relative to the folder found when it was opened, only
/// if it still names that very file ([`globo_fs::RemovableFile`]): a folder swapped for a link
/// meanwhile cannot redirect the deletion. If the check fails the plaintext is kept and
/// [`CryptoError::VerificationFailed`] (or the decryption error) is returned. A plaintext that
/// is one of `keys` itself is never deleted ([`CryptoError::KeyFileProtected`]).
///
/// Blocks on file I/O; allocates the plaintext's size once (the decryption), compared with the
/// file in 64 KiB pieces.
pub fn remove_plaintext_verified(
    keys: &impl KeySet,
    plaintext: &Path,
    ciphertext: &Path,
) -> Result<PathBuf, CryptoError> {
    if same_file(plaintext, ciphertext) {
        return Err(CryptoError::SameFile { path: plaintext.to_path_buf() });
    }
    // The plaintext is opened first (a missing one is reported before any decryption), then
    // compared piece by piece with the decryption: memory holds the plaintext once, not twice.
    let mut original = open_removable(plaintext)?;
    let target = original.path().to_path_buf();
    if let Ok(Some(key)) = key_in(original.file())
        && keys.keys().iter().any(|k| k.same_as(&key))
    {
        // The ciphertext would be locked under the very key being deleted.
        return Err(CryptoError::KeyFileProtected { path: plaintext.to_path_buf() });
    }
    let decrypted = decrypt_file_to_memory(keys, ciphertext)?;
    let same = same_content(original.file(), &decrypted)
        .map_err(|e| CryptoError::io("read", &target, e))?;
    if !same {
        return Err(CryptoError::VerificationFailed {
            plaintext: plaintext.to_path_buf(),
            ciphertext: ciphertext.to_path_buf(),
        });
    }
    original.remove()?;
    Ok(target)
}

/// The Fernet key the open file holds, if it is a key file; the file is read from its start
/// and left at its start.
fn key_in(file: &mut File) -> std::io::Result<Option<Key>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    // Read as KeyFile::load reads: anything longer than a key file is not one.
    let limit = crate::key::MAX_KEY_FILE_LEN;
    let mut text = Zeroizing::new(Vec::with_capacity(limit as usize + 1));
    file.seek(SeekFrom::Start(0))?;
    file.take(limit + 1).read_to_end(&mut text)?;
    file.seek(SeekFrom::Start(0))?;
    if text.len() as u64 > limit {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(&text) else { return Ok(None) };
    Ok(Key::from_base64(text).ok())
}

/// Flushes the folder holding `path`, so a removal survives a power loss.
pub(crate) fn sync_parent(path: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CryptoError::io("flush folder", dir, e))?;
    }
    Ok(())
}

/// What a ciphertext file's token reveals without the key (see [`crate::inspect`]).
///
/// Blocks on file I/O; reads the file in 96 KiB pieces (a pipe or a device is read whole
/// first, up to 512 MiB).
pub fn inspect_file(path: &Path) -> Result<TokenInfo, CryptoError> {
    let file = open_ciphertext(path)?;
    let metadata = file.metadata().map_err(|e| CryptoError::io("read", path, e))?;
    let token = if metadata.is_file() {
        // Read in pieces and checked as decryption would, without holding the token.
        let len = usize::try_from(metadata.len()).map_err(|_| CryptoError::TooLarge)?;
        let newline = len % 4 == 1;
        let chars = if newline { len - 1 } else { len };
        let source = fernet::ReaderSource::new(file, newline);
        return match fernet::inspect_stream(chars, source) {
            Ok((timestamp, ciphertext_len)) => Ok(TokenInfo { timestamp, ciphertext_len }),
            Err(StreamError::Read(e)) => Err(CryptoError::io("read", path, e)),
            Err(_) => Err(CryptoError::MalformedToken),
        };
    } else {
        read_unsized_token(file, path).map_err(|e| match e {
            CryptoError::Decryption => CryptoError::MalformedToken,
            other => other,
        })?
    };
    crate::inspect(&token)
}

/// The largest token read from a pipe or a device, which has no length to check first, and
/// the largest file [`read_token_file`] reads.
const MAX_UNSIZED_TOKEN: u64 = 512 << 20;

/// Reads a token from a pipe or a device, in chunks, with the newline rule of
/// [`read_token_file`]. Stops at the first byte that cannot be part of a token
/// ([`CryptoError::Decryption`]: an endless `/dev/zero` fails at once) and after
/// [`MAX_UNSIZED_TOKEN`] bytes (an endless stream of token characters).
fn read_unsized_token(file: File, path: &Path) -> Result<String, CryptoError> {
    use std::io::Read as _;
    let mut input = file.take(MAX_UNSIZED_TOKEN + 1);
    let mut text = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(CryptoError::io("read", path, e)),
        };
        let part = &chunk[..n];
        if !part.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_=\n".contains(&b)) {
            return Err(CryptoError::Decryption);
        }
        text.extend_from_slice(part);
        if text.len() as u64 > MAX_UNSIZED_TOKEN {
            return Err(CryptoError::io(
                "read",
                path,
                std::io::Error::other(format!(
                    "a token read from a pipe or device is limited to {MAX_UNSIZED_TOKEN} bytes; \
                     write it to a file first"
                )),
            ));
        }
    }
    if text.ends_with(b"\n") {
        text.pop();
    }
    // Only ASCII token characters are left.
    String::from_utf8(text).map_err(|_| CryptoError::Decryption)
}

/// Re-encrypts the file at `path` under `keys`' primary key, keeping its timestamp; `false`
/// when it already is under the primary key. Decrypted by the one decoder, as
/// [`decrypt_file_to_memory`] decrypts it.
pub(crate) fn reencrypt_file(keys: &crate::Keyring, path: &Path) -> Result<bool, CryptoError> {
    let opened = decrypt_file(keys.keys(), path, None).map_err(|e| match e {
        CryptoError::Decryption => CryptoError::RotationUndecryptable { path: path.to_path_buf() },
        other => other,
    })?;
    if opened.key_index == 0 {
        return Ok(false);
    }
    let plaintext = opened.plaintext;
    let rotated = fernet::encrypt_at_time(keys.primary(), &plaintext, opened.timestamp)?;
    // Check the new token before it replaces the old one.
    let check = crate::decrypt(keys.primary(), &rotated)?;
    if check.as_slice() != plaintext.as_slice() {
        return Err(CryptoError::RotationUndecryptable { path: path.to_path_buf() });
    }
    globo_fs::write_atomic(path, rotated.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::same_content;

    /// A reader that returns at most `step` bytes a call.
    struct Chunky<'a>(&'a [u8], usize);

    impl std::io::Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn same_content_compares_every_byte_and_the_length() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for step in [1, 7, 4096, 65_536, 1 << 20] {
            assert!(same_content(&mut Chunky(&data, step), &data).unwrap(), "{step}");
            assert!(!same_content(&mut Chunky(&data[..data.len() - 1], step), &data).unwrap());
            assert!(!same_content(&mut Chunky(&data, step), &data[..data.len() - 1]).unwrap());
            for at in [0, 1, 65_535, 65_536, 100_000, data.len() - 1] {
                let mut other = data.clone();
                other[at] ^= 1;
                assert!(!same_content(&mut Chunky(&other, step), &data).unwrap(), "{step} {at}");
            }
        }
        assert!(same_content(&mut Chunky(b"", 1), b"").unwrap());
        assert!(!same_content(&mut std::io::repeat(0), &[0; 10]).unwrap(), "endless input");
    }
}
