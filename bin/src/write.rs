//! Writing a file (an image, a PDF, a figure) so that it is never seen
//! half-written and never left half-written, whatever kills the process and
//! when.
//!
//! On Linux the bytes go to an unnamed file in the output's folder
//! (`O_TMPFILE`), which vanishes with its process if anything interrupts the
//! write, even SIGKILL. Once every byte is written, `linkat` gives it its
//! name in one step, and refuses a name that exists: without `force` an
//! output that appears while it is being made is not lost. With
//! `force` an existing output is replaced by linking to a hidden temporary
//! name and renaming it over the output; only a kill between those two calls
//! can leave that temporary name behind.
//!
//! Where the file system has no `O_TMPFILE` (or `/proc` is missing for an
//! unprivileged `linkat`), the bytes go to a named hidden temporary file that
//! is renamed into place and removed on any error; only a kill can leave it.
//!
//! No `fsync`: the promise is about processes that die, not about power cuts,
//! and syncing each of a thousand small files would cost more than flipping
//! them.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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
    // A link is written through (its target replaced, the link kept), as a
    // shell's `>` would; a FIFO, device or folder is never replaced by a file.
    let target;
    let path = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            target = std::fs::canonicalize(path)?;
            target.as_path()
        }
        _ => path,
    };
    if let Ok(meta) = std::fs::metadata(path)
        && force
        && !meta.is_file()
    {
        return Err(if meta.is_dir() {
            io::Error::from(io::ErrorKind::IsADirectory)
        } else {
            io::Error::other("it exists and is not a regular file")
        });
    }
    let (dir, name) = split(path);
    match unnamed(dir, name, bytes, force) {
        Err(Fallback::Unsupported) => named(dir, name, bytes, force),
        Err(Fallback::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

/// The folder to write in and the file's name there.
fn split(path: &Path) -> (&Path, &OsStr) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    (dir, path.file_name().unwrap_or(path.as_os_str()))
}

/// Why the `O_TMPFILE` way did not write the file.
#[derive(Debug)]
enum Fallback {
    /// The file system (or the system) cannot do it: write a named file.
    Unsupported,
    /// A real error, to report.
    Failed(io::Error),
}

impl From<io::Error> for Fallback {
    fn from(e: io::Error) -> Self {
        Fallback::Failed(e)
    }
}

/// The `O_TMPFILE` way: an unnamed file, written, then linked into place.
fn unnamed(dir: &Path, name: &OsStr, bytes: &[u8], force: bool) -> Result<(), Fallback> {
    let dir = open_dir(dir)?;
    let mut file = File::from(open_unnamed(&dir)?);
    file.write_all(bytes)?;
    let name = c_name(name)?;
    if !force {
        return link(&file, &dir, &name);
    }
    // Replacing: try a plain link first, as most outputs do not exist yet.
    match link(&file, &dir, &name) {
        Err(Fallback::Failed(e)) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => return other,
    }
    let temporary = link_temporary(&file, &dir, name.as_bytes())?;
    renameat(&dir, &temporary, &name).inspect_err(|_| {
        unlinkat(&dir, &temporary);
    })?;
    Ok(())
}

/// The folder, opened only to name files relative to it.
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let path = c_name(dir.as_os_str())?;
    // SAFETY: `path` is a valid C string; the result is checked.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    owned(fd)
}

/// An unnamed regular file in `dir`, mode 0o666 before the umask like any
/// file a program creates.
fn open_unnamed(dir: &OwnedFd) -> Result<OwnedFd, Fallback> {
    // SAFETY: `dir` is an open descriptor and "." a valid C string; the
    // result is checked.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c".".as_ptr(),
            libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
            0o666 as libc::c_uint,
        )
    };
    owned(fd).map_err(|e| match e.raw_os_error() {
        // No O_TMPFILE here: EOPNOTSUPP from the file system, EISDIR or
        // EINVAL from kernels that do not know the flag.
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL) => Fallback::Unsupported,
        _ => Fallback::Failed(e),
    })
}

/// Gives the unnamed `file` the name `name` in `dir`; `AlreadyExists` if
/// the name is taken.
fn link(file: &File, dir: &OwnedFd, name: &CStr) -> Result<(), Fallback> {
    // SAFETY: both descriptors are open and both strings valid; the result
    // is checked.
    let rc = unsafe {
        libc::linkat(
            file.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOENT) {
        return Err(e.into());
    }
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (ENOENT without it); linking
    // the descriptor's /proc entry does the same for anyone.
    link_through_proc(file, dir, name)
}

/// `link` for unprivileged processes: `linkat` on `/proc/self/fd/N`.
fn link_through_proc(file: &File, dir: &OwnedFd, name: &CStr) -> Result<(), Fallback> {
    let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
    let proc = CString::new(proc).expect("no NUL in a number");
    // SAFETY: `dir` is open and both strings valid; the result is checked.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) && !Path::new("/proc/self/fd").is_dir() {
        // No /proc: the unnamed file vanishes when dropped; write a named one.
        return Err(Fallback::Unsupported);
    }
    Err(e.into())
}

/// Links `file` under a fresh hidden name `.<name>.<random>.tmp` in `dir`
/// and returns that name.
fn link_temporary(file: &File, dir: &OwnedFd, name: &[u8]) -> Result<CString, Fallback> {
    let mut tries = 0;
    loop {
        let temporary = c_name(&temporary_name(name))?;
        match link(file, dir, &temporary) {
            Err(Fallback::Failed(e)) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => {
                tries += 1;
            }
            other => return other.map(|()| temporary),
        }
    }
}

/// `.<name>.<random>.tmp`, with `name` cut so the whole fits in a file name.
fn temporary_name(name: &[u8]) -> OsString {
    let cut = &name[..name.len().min(200)];
    let mut temporary = OsString::from(".");
    temporary.push(OsStr::from_bytes(cut));
    // Unique enough: link refuses a name that exists, and the caller retries.
    let unique = std::hash::BuildHasher::hash_one(
        &std::hash::RandomState::new(),
        (std::process::id(), std::time::SystemTime::now()),
    ) as u32;
    temporary.push(format!(".{unique:08x}.tmp"));
    temporary
}

/// Renames `from` over `to`, both in `dir`.
fn renameat(dir: &OwnedFd, from: &CStr, to: &CStr) -> io::Result<()> {
    let fd = dir.as_raw_fd();
    // SAFETY: `dir` is open and both strings valid; the result is checked.
    let rc = unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes `name` from `dir`, ignoring errors (it is cleanup after one).
fn unlinkat(dir: &OwnedFd, name: &CStr) {
    // SAFETY: `dir` is open and `name` valid.
    unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
}

/// A file name or path as a C string.
fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file name contains a NUL byte"))
}

/// The descriptor a call returned, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The fallback: a named hidden temporary file renamed into place (the
/// `tempfile` crate removes it on any error).
fn named(dir: &Path, name: &OsStr, bytes: &[u8], force: bool) -> io::Result<()> {
    let path = dir.join(name);
    let mut prefix = OsString::from(".");
    prefix.push(OsStr::from_bytes(&name.as_bytes()[..name.len().min(200)]));
    prefix.push(".");
    // 0o666 before the umask; tempfile's default of 0o600 would make outputs
    // private.
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    let persisted = if force {
        file.persist(&path)
    } else {
        file.persist_noclobber(&path)
    };
    persisted.map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Runs `write` with `umask` in force (the umask is per process: one
    /// test sets it, under a lock).
    fn with_umask<T>(umask: libc::mode_t, write: impl FnOnce() -> T) -> T {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap();
        // SAFETY: umask cannot fail.
        let old = unsafe { libc::umask(umask) };
        let result = write();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        result
    }

    fn check_every_way(write: fn(&Path, &[u8], bool) -> io::Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write(&path, b"one", false).unwrap();
        let e = write(&path, b"two", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write(&path, b"three", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        write(&dir.path().join("new.bin"), b"four", true).unwrap();
        assert_eq!(names(dir.path()), ["new.bin", "out.bin"]);
    }

    #[test]
    fn writes_replaces_only_with_force_and_leaves_no_temporary_file() {
        check_every_way(atomically);
    }

    #[test]
    fn the_named_fallback_keeps_the_same_promises() {
        check_every_way(|path, bytes, force| {
            let (dir, name) = split(path);
            named(dir, name, bytes, force)
        });
    }

    #[test]
    fn this_file_system_takes_unnamed_files_and_links_them_through_proc() {
        let dir = tempfile::tempdir().unwrap();
        let folder = open_dir(dir.path()).unwrap();
        let mut file = File::from(open_unnamed(&folder).expect("ext4 and tmpfs have O_TMPFILE"));
        file.write_all(b"unnamed").unwrap();
        assert!(names(dir.path()).is_empty());
        link_through_proc(&file, &folder, c"a").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"unnamed");
        let Err(Fallback::Failed(e)) = link_through_proc(&file, &folder, c"a") else {
            panic!("linked over an existing name")
        };
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn an_unnamed_file_dropped_before_its_link_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = open_dir(dir.path()).unwrap();
        let mut file = File::from(open_unnamed(&folder).unwrap());
        file.write_all(&[7; 100_000]).unwrap();
        drop(file);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn permissions_are_0666_less_the_umask_in_every_way() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            meta.mode() & 0o777
        };
        with_umask(0o022, || {
            atomically(&dir.path().join("a"), b"a", false).unwrap();
            atomically(&dir.path().join("a"), b"a", true).unwrap();
            named(dir.path(), OsStr::new("b"), b"b", false).unwrap();
        });
        assert_eq!((mode("a"), mode("b")), (0o644, 0o644));
        with_umask(0o077, || {
            atomically(&dir.path().join("c"), b"c", false).unwrap();
            named(dir.path(), OsStr::new("d"), b"d", false).unwrap();
        });
        assert_eq!((mode("c"), mode("d")), (0o600, 0o600));
    }

    #[test]
    fn failures_leave_nothing_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        // A folder that does not exist.
        let e = atomically(&dir.path().join("no/out.bin"), b"x", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // Replacing a folder with a file.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = atomically(&dir.path().join("sub"), b"x", true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory, "{e}");
        let e = atomically(&dir.path().join("sub"), b"x", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(names(dir.path()), ["sub"]);
        assert!(names(&dir.path().join("sub")).is_empty());
    }

    #[test]
    fn long_names_get_temporary_names_that_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n".repeat(255));
        atomically(&path, b"one", false).unwrap();
        atomically(&path, b"two", true).unwrap();
        named(dir.path(), path.file_name().unwrap(), b"three", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(names(dir.path()).len(), 1);
    }
}
