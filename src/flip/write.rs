//! Writing an output so that it is never seen half-written: the bytes go to
//! a temporary file in the output's folder, which is then renamed into place.
//! Without `force` the rename refuses to replace an existing file (Linux
//! `renameat2(RENAME_NOREPLACE)`, or a hard link), so an output that appears
//! while the image is being flipped is not lost either.

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically; replaces an existing file only with
/// `force`. A failed write leaves no temporary file behind.
///
/// # Errors
///
/// The operating system's error; `AlreadyExists` when `path` exists and
/// `force` is false.
pub fn atomically(path: &Path, bytes: &[u8], force: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or(path.as_os_str());
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    // 0o666 before the umask, like any file a program creates; tempfile's
    // default of 0o600 would make outputs private.
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    let persisted = if force {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    persisted.map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_only_with_force_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        atomically(&path, b"one", false).unwrap();
        let e = atomically(&path, b"two", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        atomically(&path, b"three", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.bin"]);
    }
}
