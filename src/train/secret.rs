//! The shared secret of a multi-node run: from `node_secret_file`, or the `MGRPO_NODE_SECRET`
//! environment variable. Every node proves with it that it belongs to the run (`rl::wire`).
//! A file others can read is refused, as ssh refuses such a key.

use std::path::Path;

use crate::error::{Error, KeyError, Result};

/// The environment variable read when `node_secret_file` is not set.
pub const SECRET_ENV: &str = "MGRPO_NODE_SECRET";
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;
/// The longest secret file read.
const MAX_SECRET: u64 = 1 << 16;

fn bad(key: &str, msg: String) -> Error {
    KeyError::new(key, msg).into()
}

/// The secret `file` holds (surrounding whitespace left out), or the environment's.
pub fn read(file: &str) -> Result<Vec<u8>> {
    let make = "make one with `head -c 32 /dev/urandom | base64 > FILE && chmod 600 FILE`, \
                and copy it to every node";
    if file.is_empty() {
        let value = std::env::var(SECRET_ENV).map_err(|_| {
            bad(
                "node_secret_file",
                format!(
                    "missing: a multi-node run needs a shared secret, in a file \
                     (node_secret_file) or in {SECRET_ENV}; {make}"
                ),
            )
        })?;
        return check(value.trim().as_bytes(), SECRET_ENV);
    }
    let path = Path::new(file);
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() > MAX_SECRET {
        return Err(bad(
            "node_secret_file",
            format!("{file} is not a file of at most {MAX_SECRET} bytes"),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(
                "node_secret_file",
                format!(
                    "{file} can be read by others (mode {mode:o}): `chmod 600 {file}` so that \
                     only its owner can"
                ),
            ));
        }
    }
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    check(text.trim_ascii(), file)
}

fn check(secret: &[u8], from: &str) -> Result<Vec<u8>> {
    if secret.len() < MIN_SECRET {
        return Err(bad(
            "node_secret_file",
            format!(
                "the secret in {from} has {} bytes, fewer than {MIN_SECRET}",
                secret.len()
            ),
        ));
    }
    Ok(secret.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_or_a_short_secret_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        let name = f.to_str().unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(name).unwrap_err().to_string();
        assert!(
            e.contains("chmod 600") && e.contains("node_secret_file"),
            "{e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(name).unwrap(), b"0123456789abcdef0123");
        std::fs::write(&f, "short").unwrap();
        assert!(read(name)
            .unwrap_err()
            .to_string()
            .contains("fewer than 16"));
        let e = read(dir.path().join("none").to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("none"), "{e}");
    }
}
